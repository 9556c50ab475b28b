#!/usr/bin/env python3
"""Serve the repository root on 127.0.0.1 for the demo page (stdlib only).

Prints exactly one line, the page's address, once the socket is listening,
then serves until Ctrl-C.

Every file goes out with an ETag and `Cache-Control: no-cache`: the browser
keeps it and asks again with If-None-Match, answered 304 without a body while
the file is unchanged, so a rebuilt www/pkg is still picked up on a plain
reload. Text and WebAssembly go out gzip-compressed to clients that accept it
(compressed once per file version, kept in memory).

  PORT=8123 python3 scripts/serve.py   # default 8000; 0, or a taken port, picks a free one
  VERBOSE=1 python3 scripts/serve.py   # log every request
  ISOLATE=1 python3 scripts/serve.py   # cross-origin isolated (as `make demo` serves)

With ISOLATE=1 every response carries `Cross-Origin-Opener-Policy:
same-origin` and `Cross-Origin-Embedder-Policy: require-corp`: the page is
cross-origin isolated, so SharedArrayBuffer exists and CPU runs with
threads > 1 take the WebAssembly-threads build (www/pkg-threads/, threads
sharing one memory). The page loads nothing from other origins, which these
headers would block.
"""

import errno
import functools
import gzip
import hashlib
import http.server
import io
import os
import socketserver
import sys
import threading
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VERBOSE = os.environ.get("VERBOSE") == "1"
ISOLATE = os.environ.get("ISOLATE") == "1"
# Worth compressing: text, and WebAssembly (about a third of its size).
COMPRESSIBLE = {".wasm", ".js", ".mjs", ".json", ".css", ".html", ".svg", ".txt", ".map"}
MIN_COMPRESS = 1024


class Representations:
    """Each file's bytes, ETag and gzip form, per version (path, mtime, size)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.entries = {}

    def get(self, path):
        st = os.stat(path)
        key = (st.st_mtime_ns, st.st_size)
        with self.lock:
            entry = self.entries.get(path)
            if entry and entry["key"] == key:
                return entry
        with open(path, "rb") as f:
            raw = f.read()
        digest = hashlib.sha256(raw).hexdigest()[:20]
        gz = None
        if Path(path).suffix in COMPRESSIBLE and len(raw) >= MIN_COMPRESS:
            gz = gzip.compress(raw, compresslevel=6, mtime=0)
            if len(gz) >= len(raw):
                gz = None
        entry = {"key": key, "raw": raw, "gz": gz, "etag": digest, "mtime": st.st_mtime}
        with self.lock:
            self.entries[path] = entry
        return entry


def accepts_gzip(header):
    for part in (header or "").split(","):
        name, _, params = part.strip().partition(";")
        if name.strip().lower() in ("gzip", "*"):
            q = params.strip()
            return not (q.startswith("q=") and float(q[2:] or 0) == 0)
    return False


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

    def send_head(self):
        path = self.translate_path(self.path)
        if os.path.isdir(path):
            if not urllib.parse.urlsplit(self.path).path.endswith("/"):
                return super().send_head()  # the redirect to path/
            index = os.path.join(path, "index.html")
            if not os.path.isfile(index):
                return super().send_head()  # the listing
            path = index
        if not os.path.isfile(path):
            self.send_error(404, "File not found")
            return None
        try:
            entry = self.server.representations.get(path)
        except OSError:
            self.send_error(404, "File not found")
            return None
        compressed = entry["gz"] is not None and accepts_gzip(self.headers.get("Accept-Encoding"))
        # One ETag per representation: the gzip bytes are another entity.
        etag = f'"{entry["etag"]}{"-gz" if compressed else ""}"'
        wanted = [t.strip() for t in (self.headers.get("If-None-Match") or "").split(",") if t.strip()]
        if etag in wanted or "*" in wanted:
            self.send_response(304)
            self.cache_headers(etag, entry)
            self.end_headers()
            return None
        body = entry["gz"] if compressed else entry["raw"]
        self.send_response(200)
        self.send_header("Content-Type", self.guess_type(path))
        self.send_header("Content-Length", str(len(body)))
        if compressed:
            self.send_header("Content-Encoding", "gzip")
        self.cache_headers(etag, entry)
        self.end_headers()
        return io.BytesIO(body)

    def cache_headers(self, etag, entry):
        self.send_header("ETag", etag)
        self.send_header("Last-Modified", self.date_time_string(entry["mtime"]))
        # Kept, but checked with the server before each use (a 304 costs no
        # body), so a rebuilt www/pkg is picked up on a plain reload.
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Vary", "Accept-Encoding")
        self.cached = True

    def end_headers(self):
        # Redirects, listings and errors are not kept.
        if not getattr(self, "cached", False):
            self.send_header("Cache-Control", "no-store")
        self.cached = False
        if ISOLATE:
            self.send_header("Cross-Origin-Opener-Policy", "same-origin")
            self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
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

    def __init__(self, *args, **kwargs):
        self.representations = Representations()
        super().__init__(*args, **kwargs)

    def server_bind(self):
        # HTTPServer.server_bind does a reverse DNS lookup (getfqdn), which
        # can stall on a machine without network; the name is never used.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def handle_error(self, request, client_address):
        # Browsers drop connections they no longer need (a stopped worker's
        # imports, a page left): one line when asked, no traceback.
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError):
            if VERBOSE:
                print(f"{client_address[0]} dropped the connection ({type(error).__name__})", file=sys.stderr)
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
