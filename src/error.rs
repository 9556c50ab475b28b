//! The crate's errors: one enum whose variants say what went wrong as data
//! (which setting, which limit, which record), each carrying the exit status
//! the command-line tool uses and the `code` the JavaScript API exposes, so
//! no caller reads message text to decide what happened.

use thiserror::Error;

/// Longest piece of user input echoed back in a message (a hostile value can
/// be megabytes long or hold newlines).
pub const ECHO_MAX: usize = 80;

/// User input made safe to echo in a one-line message: control characters
/// escaped, cut to [`ECHO_MAX`] characters with the full length named.
pub fn echo(text: &str) -> String {
    let mut out = String::new();
    for (shown, c) in text.chars().enumerate() {
        if shown >= ECHO_MAX {
            let total = text.chars().count();
            return format!("{out}... ({total} characters)");
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// A panic in one line: its message (newlines flattened) and where it happened.
pub fn panic_message(info: &std::panic::PanicHookInfo<'_>) -> String {
    let payload = info.payload();
    let what = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".into());
    let at = info.location().map_or("?".into(), |l| l.to_string());
    format!("{} (at {at})", what.replace('\n', " "))
}

/// Everything the engine can refuse or fail at.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum Error {
    /// A setting is refused: `field` names it.
    #[error("{field}: {message}")]
    Config { field: String, message: String },
    /// A run would exceed a resource limit (named in the message) before
    /// anything was allocated.
    #[error("{field}: {message}")]
    Limit { field: String, message: String },
    /// A manifest or checkpoint was refused (unreadable, edited, inconsistent).
    #[error("{0}")]
    Record(String),
    /// The GPU asked for (strictly) is missing or failed.
    #[error("{0}")]
    Backend(String),
    /// A file could not be read or written.
    #[error("{0}")]
    Io(String),
    /// A call arrived while the run was busy with another.
    #[error("this run is busy with another call: await it first")]
    Busy,
}

impl Error {
    /// A refused setting.
    pub fn config(field: &str, message: impl Into<String>) -> Error {
        Error::Config { field: field.to_string(), message: message.into() }
    }

    /// A resource limit.
    pub fn limit(field: &str, message: impl Into<String>) -> Error {
        Error::Limit { field: field.to_string(), message: message.into() }
    }

    /// The command-line exit status: 2 invalid input, 3 backend unavailable.
    pub fn exit_status(&self) -> i32 {
        match self {
            Error::Backend(_) => 3,
            _ => 2,
        }
    }

    /// The stable code the JavaScript API puts on its errors.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Config { .. } => "invalid_settings",
            Error::Limit { .. } => "limit",
            Error::Record(_) => "invalid_record",
            Error::Backend(_) => "backend_unavailable",
            Error::Io(_) => "io",
            Error::Busy => "busy",
        }
    }

    /// The setting at fault, if any.
    pub fn field(&self) -> Option<&str> {
        match self {
            Error::Config { field, .. } | Error::Limit { field, .. } => Some(field),
            _ => None,
        }
    }

    /// The same error with `context` (a file name, a record) in front.
    pub fn context(self, context: &str) -> Error {
        match self {
            Error::Record(m) => Error::Record(format!("{context}: {m}")),
            Error::Backend(m) => Error::Backend(format!("{context}: {m}")),
            Error::Io(m) => Error::Io(format!("{context}: {m}")),
            Error::Config { field, message } => Error::Config { field, message: format!("{context}: {message}") },
            Error::Limit { field, message } => Error::Limit { field, message: format!("{context}: {message}") },
            Error::Busy => Error::Busy,
        }
    }
}

/// A result with the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_escapes_and_caps() {
        assert_eq!(echo("a\nb"), "a\\nb");
        let long = "9".repeat(200_000);
        let e = echo(&long);
        assert!(e.len() < 120, "{e}");
        assert!(e.ends_with("(200000 characters)"));
    }

    #[test]
    fn exit_status_and_code() {
        assert_eq!(Error::Backend("x".into()).exit_status(), 3);
        assert_eq!(Error::config("seed", "bad").exit_status(), 2);
        assert_eq!(Error::limit("hidden", "too big").code(), "limit");
        assert_eq!(Error::config("seed", "bad").field(), Some("seed"));
    }
}
