#!/usr/bin/env python3
"""Serve the repository root on 127.0.0.1 for the demo page (stdlib only).

Prints exactly one line, the page's address, once the socket is listening,
then serves until Ctrl-C.

  PORT=8123 python3 scripts/serve.py   # default 8000; 0, or a taken port, picks a free one
  VERBOSE=1 python3 scripts/serve.py   # log every request
"""

import errno
import functools
import http.server
import os
import socketserver
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VERBOSE = os.environ.get("VERBOSE") == "1"


class Handler(http.server.SimpleHTTPRequestHandler):
    # Explicit types: WebAssembly.instantiateStreaming refuses anything but
    # application/wasm, and module scripts need a JavaScript type. Python's
    # mimetypes reads the system's tables, which vary between machines.
    extensions_map = {
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".wasm": "application/wasm",
        ".js": "text/javascript",
        ".mjs": "text/javascript",
        ".json": "application/json",
        ".css": "text/css",
        ".html": "text/html; charset=utf-8",
        ".png": "image/png",
        ".svg": "image/svg+xml",
    }

    def end_headers(self):
        # A rebuilt www/pkg must be picked up on a plain reload.
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_request(self, code="-", size="-"):
        # One line per request only when asked; errors (404s and the like)
        # still go to stderr through log_error.
        if VERBOSE:
            super().log_request(code, size)


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    # SO_REUSEPORT would let a second server share a taken port silently.
    allow_reuse_port = False

    def server_bind(self):
        # HTTPServer.server_bind does a reverse DNS lookup (getfqdn), which
        # can stall on a machine without network; the name is never used.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def handle_error(self, request, client_address):
        # Browsers drop connections they no longer need; no traceback for that.
        if isinstance(sys.exc_info()[1], ConnectionError) and not VERBOSE:
            return
        super().handle_error(request, client_address)


def bind(port):
    handler = functools.partial(Handler, directory=str(ROOT))
    try:
        return Server(("127.0.0.1", port), handler)
    except OSError as e:
        if port == 0 or e.errno not in (errno.EADDRINUSE, errno.EACCES):
            raise
        print(f"serve.py: port {port} is not available, picking a free one", file=sys.stderr)
        return Server(("127.0.0.1", 0), handler)


def main():
    raw = os.environ.get("PORT", "8000")
    try:
        port = int(raw)
        if not 0 <= port <= 65535:
            raise ValueError
    except ValueError:
        print(f"serve.py: PORT must be a number from 0 to 65535, got {raw!r}", file=sys.stderr)
        return 2
    with bind(port) as server:
        print(f"http://127.0.0.1:{server.server_port}/", flush=True)
        server.serve_forever()
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(0)
