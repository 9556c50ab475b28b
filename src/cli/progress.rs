//! Progress on stderr: a redrawn line on a terminal, a line every 10%
//! otherwise, nothing with `--quiet`.

use std::io::{IsTerminal, Write};
use std::time::Instant;

/// Progress on stderr: a redrawn line on a terminal, a line every 10% otherwise.
pub struct Progress {
    tty: bool,
    quiet: bool,
    start: Instant,
    last_draw: Option<Instant>,
    last_tenth: usize,
    first_step: Option<usize>,
    label: &'static str,
}

impl Progress {
    pub fn new(label: &'static str, quiet: bool) -> Progress {
        Progress {
            tty: std::io::stderr().is_terminal(),
            quiet,
            start: Instant::now(),
            last_draw: None,
            last_tenth: 0,
            first_step: None,
            label,
        }
    }

    pub fn update(&mut self, step: usize, total: usize, detail: &str) {
        if self.quiet || total == 0 {
            return;
        }
        // Steps per second of this session (a resumed run starts mid-way).
        let first = *self.first_step.get_or_insert(step.saturating_sub(1));
        let rate = (step - first) as f64 / self.start.elapsed().as_secs_f64().max(1e-9);
        if self.tty {
            let due = self.last_draw.is_none_or(|t| t.elapsed().as_millis() >= 100) || step == total;
            if due {
                let width = 24;
                let filled = step * width / total;
                eprint!(
                    "\r{} [{}{}] {step}/{total} {detail} {rate:.0} steps/s ",
                    self.label,
                    "#".repeat(filled),
                    " ".repeat(width - filled)
                );
                let _ = std::io::stderr().flush();
                self.last_draw = Some(Instant::now());
            }
        } else {
            let tenth = step * 10 / total;
            if tenth > self.last_tenth || step == total {
                self.last_tenth = tenth;
                eprintln!("{} step {step}/{total} {detail} ({rate:.0} steps/s)", self.label);
            }
        }
    }

    pub fn finish(&self) {
        if self.tty && !self.quiet {
            eprintln!();
        }
    }
}
