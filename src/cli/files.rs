//! Files the tool reads and writes, so that nothing is lost: inputs are read
//! with a size cap; outputs are written beside the target under a unique
//! temporary name, synced to disk, then renamed over it (an interrupted or
//! failed write leaves the old file whole and no temporary behind); an output
//! that is one of the inputs, or not a regular file, is refused.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use reprolab::config::MAX_FILE_BYTES;
use reprolab::history::HistoryLog;
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
    write_with(path, &mut |w| w.write_all(text.as_bytes()))
}

/// Writes what `fill` writes to `path` atomically and durably, through a
/// buffer: the content is never held whole (a long run's manifest streams).
pub fn write_with(path: &Path, fill: &mut dyn FnMut(&mut dyn Write) -> std::io::Result<()>) -> Result<(), Error> {
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
        let f = std::fs::OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        let mut w = std::io::BufWriter::with_capacity(1 << 16, f);
        fill(&mut w)?;
        let f = w.into_inner().map_err(|e| e.into_error())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        sync_folder(path);
        Ok::<(), std::io::Error>(())
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::Io(format!("cannot write {}: {e}", path.display()))
    })
}

/// Makes a rename or a new file in `path`'s folder durable.
fn sync_folder(path: &Path) {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
}

/// The append-only history file a run's checkpoints continue (see
/// `reprolab::history`): a new file in the checkpoint folder, never one that
/// exists (another run's checkpoints may continue it).
pub struct HistoryFile {
    path: PathBuf,
    file: std::fs::File,
    log: HistoryLog,
}

impl HistoryFile {
    /// Creates `history-K.jsonl` in `dir` for the first K whose name is free.
    pub fn create(dir: &Path) -> Result<HistoryFile, Error> {
        std::fs::create_dir_all(dir).map_err(|e| Error::Io(format!("cannot create {}: {e}", dir.display())))?;
        for k in 1..=10_000 {
            let name = format!("history-{k}.jsonl");
            let path = dir.join(&name);
            match std::fs::OpenOptions::new().append(true).create_new(true).open(&path) {
                Ok(file) => {
                    sync_folder(&path);
                    return Ok(HistoryFile { path, file, log: HistoryLog::new(name) });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(Error::Io(format!("cannot create {}: {e}", path.display()))),
            }
        }
        Err(Error::Io(format!("cannot create a history file in {}: history-1 to -10000.jsonl exist", dir.display())))
    }

    /// What a checkpoint continuing the file as written so far records.
    pub fn reference(&self) -> reprolab::history::HistoryRef {
        self.log.reference()
    }

    /// Appends the run's steps not yet in the file, durably.
    pub fn append(&mut self, rec: &reprolab::record::RunRecord) -> Result<(), Error> {
        let result = (|| {
            let mut w = std::io::BufWriter::with_capacity(1 << 16, &self.file);
            self.log.append(rec, &mut w)?;
            w.flush()?;
            drop(w);
            self.file.sync_data()
        })();
        result.map_err(|e| Error::Io(format!("cannot write {}: {e}", self.path.display())))
    }
}

/// Reads the history file a version 2 checkpoint at `checkpoint` continues:
/// the file of that name in the checkpoint's folder.
pub fn read_history(
    checkpoint: &Path,
    href: &reprolab::history::HistoryRef,
) -> Result<reprolab::history::History, Error> {
    let dir = checkpoint.parent().unwrap_or(Path::new("."));
    let path = dir.join(&href.file);
    let shown = path.display().to_string();
    let file = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::Record(format!(
                "the history file {shown} that this checkpoint continues is missing (a checkpoint of version 2 is \
                 resumed beside the history file of its run)"
            )))
        }
        Err(e) => return Err(Error::Io(format!("cannot read {shown}: {e}"))),
    };
    let reader = std::io::BufReader::with_capacity(1 << 16, file.take(href.bytes));
    reprolab::history::read(reader, href, &shown)
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
