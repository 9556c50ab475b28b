//! Files the tool reads and writes, so that nothing is lost: inputs are read
//! with a size cap; outputs are written beside the target under a unique
//! temporary name, synced to disk, then renamed over it (an interrupted or
//! failed write leaves the old file whole and no temporary behind); an output
//! that is one of the inputs, or not a regular file, is refused.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use reprolab::config::MAX_FILE_BYTES;
use reprolab::Error;

/// Reads a text file of at most [`MAX_FILE_BYTES`].
pub fn read_text(path: &Path) -> Result<String, Error> {
    let shown = path.display();
    let file = std::fs::File::open(path).map_err(|e| Error::Io(format!("cannot read {shown}: {e}")))?;
    let mut text = String::new();
    let n = file
        .take(MAX_FILE_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| Error::Io(format!("cannot read {shown}: {e}")))?;
    if n as u64 > MAX_FILE_BYTES {
        return Err(Error::limit("file", format!("{shown} is larger than {MAX_FILE_BYTES} bytes (MAX_FILE_BYTES)")));
    }
    Ok(text)
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

/// Refuses an output path that is one of `inputs` or exists as anything but
/// a regular file (a device, a folder, a pipe).
pub fn check_output(out: &Path, inputs: &[&Path]) -> Result<(), Error> {
    if inputs.iter().any(|i| same_file(out, i)) {
        return Err(Error::config(
            "out",
            format!("{} is also an input of this command: write the result elsewhere", out.display()),
        ));
    }
    if let Ok(meta) = std::fs::metadata(out) {
        if !meta.is_file() {
            return Err(Error::config("out", format!("{} exists and is not a regular file", out.display())));
        }
        if meta.permissions().readonly() {
            return Err(Error::config("out", format!("{} is read-only: not replacing it", out.display())));
        }
    }
    Ok(())
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn temp_beside(path: &Path) -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "out".into());
    path.with_file_name(format!(".{name}.{}.{n}.tmp~", std::process::id()))
}

/// Writes `text` to `path` atomically and durably (see the module's text).
pub fn write_text(path: &Path, text: &str) -> Result<(), Error> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::Io(format!("cannot create {}: {e}", dir.display())))?;
    }
    if let Ok(meta) = std::fs::metadata(path) {
        if !meta.is_file() {
            return Err(Error::Io(format!("cannot write {}: it exists and is not a regular file", path.display())));
        }
    }
    let tmp = temp_beside(path);
    let result = (|| {
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            // The rename itself is durable once the folder is synced.
            if let Ok(d) = std::fs::File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok::<(), std::io::Error>(())
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::Io(format!("cannot write {}: {e}", path.display()))
    })
}

/// Writes raw bytes the same way.
pub fn write_bytes(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    // Text and bytes share the same path; bytes are never text here, but a
    // lossless route keeps one implementation.
    let tmp = temp_beside(path);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::Io(format!("cannot create {}: {e}", dir.display())))?;
    }
    let result = (|| {
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::Io(format!("cannot write {}: {e}", path.display()))
    })
}
