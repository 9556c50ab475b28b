//! `bench --soak`: long runs, each in a child process of its own (so each
//! peak is its own), measuring what grows with the steps: the peak resident
//! memory (the kernel's `ru_maxrss` of that child, from `wait4`), the
//! manifest's size and the checkpoint folder's.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use reprolab::Error;

/// One child's figures.
pub struct Child {
    /// Exit status (`None` when killed by a signal).
    pub code: Option<i32>,
    /// Peak resident set size, bytes.
    pub peak_rss: u64,
    pub seconds: f64,
    pub stderr: String,
}

/// Runs `cmd` to its end and measures its peak memory (Linux and other
/// unixes with `wait4`).
#[cfg(unix)]
#[allow(clippy::zombie_processes)] // reaped by wait4, not by std
pub fn measure(mut cmd: Command) -> Result<Child, Error> {
    use std::io::Read;
    let start = Instant::now();
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::Io(format!("cannot start {cmd:?}: {e}")))?;
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut stderr);
    }
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: `rusage` is plain data that wait4 fills in; `status` and `usage`
    // outlive the call; `pid` is our own child, not yet waited for (std's
    // Child is never waited on after this, so nothing reaps it twice).
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let got = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    if got != pid {
        return Err(Error::Io(format!("cannot wait for child {pid}: {}", std::io::Error::last_os_error())));
    }
    let seconds = start.elapsed().as_secs_f64();
    let code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
    // Linux reports ru_maxrss in kilobytes (macOS in bytes).
    let unit = if cfg!(target_os = "macos") { 1 } else { 1024 };
    Ok(Child { code, peak_rss: usage.ru_maxrss.max(0) as u64 * unit, seconds, stderr })
}

#[cfg(not(unix))]
pub fn measure(_cmd: Command) -> Result<Child, Error> {
    Err(Error::config("soak", "bench --soak measures child processes with wait4: unix only"))
}

/// Bytes of the files in `dir` (not recursive; 0 when it does not exist).
pub fn folder_bytes(dir: &Path) -> (u64, usize) {
    let mut total = 0;
    let mut checkpoints = 0;
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if let Ok(m) = e.metadata() {
                if m.is_file() {
                    total += m.len();
                    checkpoints += usize::from(e.file_name().to_string_lossy().ends_with(".checkpoint.json"));
                }
            }
        }
    }
    (total, checkpoints)
}

/// One soak run's figures.
#[derive(serde::Serialize)]
pub struct Row {
    pub steps: usize,
    pub seconds: f64,
    pub peak_rss_bytes: u64,
    pub manifest_bytes: u64,
    pub checkpoints: usize,
    pub checkpoint_folder_bytes: u64,
    pub manifest_bytes_per_step: f64,
    pub checkpoint_bytes_per_step: f64,
}

/// Trains `steps` steps in a child process with the settings `set` and a
/// checkpoint every `every` steps, in a scratch folder under `scratch`
/// (removed afterwards).
pub fn soak_one(steps: usize, set: &[String], every: usize, scratch: &Path) -> Result<Row, Error> {
    let dir = scratch.join(format!("soak-{steps}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| Error::Io(format!("cannot create {}: {e}", dir.display())))?;
    let (manifest, ck): (PathBuf, PathBuf) = (dir.join("manifest.json"), dir.join("checkpoints"));
    let exe = std::env::current_exe().map_err(|e| Error::Io(format!("cannot find this program: {e}")))?;
    let mut cmd = Command::new(exe);
    cmd.args(["train", "--quiet", "--backend", "cpu", "--steps", &steps.to_string()]);
    for s in set {
        cmd.args(["--set", s]);
    }
    cmd.arg("--checkpoint-every").arg(every.to_string()).arg("--checkpoint-dir").arg(&ck).arg("--out").arg(&manifest);
    let child = measure(cmd)?;
    let result = if child.code != Some(0) {
        Err(Error::Io(format!(
            "the soak run of {steps} steps failed ({}): {}",
            child.code.map_or("killed".to_string(), |c| format!("exit {c}")),
            child.stderr.trim()
        )))
    } else {
        let manifest_bytes = std::fs::metadata(&manifest).map(|m| m.len()).unwrap_or(0);
        let (checkpoint_folder_bytes, checkpoints) = folder_bytes(&ck);
        Ok(Row {
            steps,
            seconds: child.seconds,
            peak_rss_bytes: child.peak_rss,
            manifest_bytes,
            checkpoints,
            checkpoint_folder_bytes,
            manifest_bytes_per_step: manifest_bytes as f64 / steps as f64,
            checkpoint_bytes_per_step: checkpoint_folder_bytes as f64 / steps as f64,
        })
    };
    let _ = std::fs::remove_dir_all(&dir);
    result
}
