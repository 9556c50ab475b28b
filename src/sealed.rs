//! Sealed JSON, the one reader and writer of checksummed records (manifests
//! and checkpoints).
//!
//! Canonical form, so another implementation can verify a checksum: parse the
//! file as JSON, remove the top-level `checksum` member, and serialise the
//! value with object keys sorted by their UTF-8 bytes, no whitespace, strings
//! escaped as serde_json does (`"` and `\` and control characters only), and
//! numbers as parsed: integers in decimal, floats in the shortest form that
//! reads back to the same f64. The checksum is the lowercase hex SHA-256 of
//! those bytes. A reader refuses duplicate keys anywhere in the document, so
//! no two readers can see different values in one valid file.

use std::fmt;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::spec;

/// A JSON value whose objects have no duplicate keys.
struct Strict(Value);

impl<'de> serde::Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Strict, D::Error> {
        d.deserialize_any(StrictVisitor)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Strict;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> std::result::Result<Strict, E> {
        Ok(Strict(Value::Bool(v)))
    }
    fn visit_i64<E>(self, v: i64) -> std::result::Result<Strict, E> {
        Ok(Strict(Value::from(v)))
    }
    fn visit_u64<E>(self, v: u64) -> std::result::Result<Strict, E> {
        Ok(Strict(Value::from(v)))
    }
    fn visit_f64<E>(self, v: f64) -> std::result::Result<Strict, E> {
        Ok(Strict(Value::from(v)))
    }
    fn visit_str<E>(self, v: &str) -> std::result::Result<Strict, E> {
        Ok(Strict(Value::String(v.to_string())))
    }
    fn visit_string<E>(self, v: String) -> std::result::Result<Strict, E> {
        Ok(Strict(Value::String(v)))
    }
    fn visit_unit<E>(self) -> std::result::Result<Strict, E> {
        Ok(Strict(Value::Null))
    }
    fn visit_none<E>(self) -> std::result::Result<Strict, E> {
        Ok(Strict(Value::Null))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Strict, A::Error> {
        let mut out = Vec::new();
        while let Some(Strict(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(Strict(Value::Array(out)))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Strict, A::Error> {
        let mut out = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let Strict(v) = map.next_value()?;
            if out.contains_key(&key) {
                return Err(de::Error::custom(format!("duplicate key \"{}\"", crate::error::echo(&key))));
            }
            out.insert(key, v);
        }
        Ok(Strict(Value::Object(out)))
    }
}

/// Longest parser message kept in a refusal: serde's messages quote the
/// offending value whole (a hostile one can be megabytes long).
pub const MESSAGE_MAX: usize = 300;

/// A parser's message made safe for a one-line refusal: control characters
/// escaped, cut to [`MESSAGE_MAX`] characters with the full length named.
pub fn one_line(message: &str) -> String {
    let mut out = String::new();
    for (shown, c) in message.chars().enumerate() {
        if shown >= MESSAGE_MAX {
            return format!("{out}... ({} characters)", message.chars().count());
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Parses JSON text, refusing duplicate keys.
pub fn parse_strict(text: &str) -> std::result::Result<Value, serde_json::Error> {
    serde_json::from_str::<Strict>(text).map(|s| s.0)
}

/// Reads sealed JSON (a manifest or a checkpoint): refuses text that is not
/// JSON (truncated), has duplicate keys, is not an object, of another
/// `<what>_version`, or whose content no longer hashes to its `checksum`
/// (`changed` says how, in words).
pub fn read(text: &str, what: &str, version: u32, changed: &str) -> Result<Value> {
    read_versions(text, what, &[version], changed)
}

/// [`read`] for a record of which several versions are read (`versions` in
/// increasing order).
pub fn read_versions(text: &str, what: &str, versions: &[u32], changed: &str) -> Result<Value> {
    let v: Value = parse_strict(text).map_err(|e| {
        let hint = if e.is_eof() { " (the file looks truncated)" } else { "" };
        Error::Record(format!("not a readable {what}: invalid JSON{hint}: {}", one_line(&e.to_string())))
    })?;
    let obj = v.as_object().ok_or_else(|| Error::Record(format!("not a {what}: expected a JSON object")))?;
    let key = format!("{what}_version");
    let found = obj.get(&key).ok_or_else(|| Error::Record(format!("not a {what}: no {key} field")))?;
    if !versions.iter().any(|&v| found.as_u64() == Some(u64::from(v))) {
        let read = match versions {
            [one] => format!("version {one}"),
            _ => format!("versions {}", versions.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(" and ")),
        };
        return Err(Error::Record(format!(
            "{what} version {} is not supported: this reprolab {} reads {read}",
            crate::error::echo(&found.to_string()),
            spec::CRATE_VERSION
        )));
    }
    let recorded = obj.get("checksum").and_then(Value::as_str).unwrap_or("").to_string();
    let computed = checksum_of(&v);
    if recorded != computed {
        return Err(Error::Record(format!(
            "the {what} {changed}: its checksum is \"{}\" but its content hashes to {computed}",
            crate::error::echo(&recorded)
        )));
    }
    Ok(v)
}

/// SHA-256 of the canonical form of a value (see the module's text).
pub fn checksum_of(v: &Value) -> String {
    // Hashed as it is written: neither a copy of the tree nor its text is made.
    let mut h = Sha256Writer::new();
    match v {
        Value::Object(map) => write_canonical_object(&mut h, map, true, &mut |_, _| Ok(false)),
        other => serde_json::to_writer(&mut h, other).map_err(io_error),
    }
    .expect("hashing does not fail");
    h.hex()
}

/// Seals a serialisable record: its checksum over the text form a reader sees
/// (f32 values print in their shortest form, which differs from their widened
/// f64 value). Builds the record's whole JSON tree: for small records only;
/// a manifest or checkpoint is sealed while streamed ([`write_canonical_object`]).
pub fn seal<T: serde::Serialize>(record: &T) -> String {
    let text = serde_json::to_string(record).expect("a record serialises");
    checksum_of(&serde_json::from_str(&text).expect("a record parses back"))
}

/// A writer that hashes what it is given (SHA-256), keeping nothing else.
#[derive(Clone, Default)]
pub struct Sha256Writer(sha2::Sha256);

impl Sha256Writer {
    pub fn new() -> Sha256Writer {
        Sha256Writer::default()
    }

    /// The lowercase hex digest of everything written so far.
    pub fn hex(&self) -> String {
        use sha2::Digest;
        self.0.clone().finalize().iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl std::io::Write for Sha256Writer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        sha2::Digest::update(&mut self.0, buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn io_error(e: serde_json::Error) -> std::io::Error {
    std::io::Error::other(e)
}

/// The JSON object a reader sees for a small record (its text form parsed
/// back, as [`seal`] does): the frame of a large record whose long arrays
/// were left empty, to be streamed by [`write_canonical_object`].
pub fn small_object<T: serde::Serialize>(record: &T) -> serde_json::Map<String, Value> {
    let text = serde_json::to_string(record).expect("a record serialises");
    match serde_json::from_str(&text).expect("a record parses back") {
        Value::Object(map) => map,
        _ => unreachable!("records are JSON objects"),
    }
}

/// Writes the canonical form (see the module's text) of an object whose
/// members are `frame`'s, except that `stream(key, w)` may write a member's
/// value itself (returning true): a long array is then never held as a JSON
/// tree or as text. A top-level object leaves out its `checksum`
/// (`top_level`); a nested one keeps it.
pub fn write_canonical_object(
    w: &mut dyn std::io::Write,
    frame: &serde_json::Map<String, Value>,
    top_level: bool,
    stream: &mut dyn FnMut(&str, &mut dyn std::io::Write) -> std::io::Result<bool>,
) -> std::io::Result<()> {
    w.write_all(b"{")?;
    let mut first = true;
    // serde_json's Map is a BTreeMap: keys in sorted order, as canonical.
    for (key, value) in frame {
        if top_level && key == "checksum" {
            continue;
        }
        if !first {
            w.write_all(b",")?;
        }
        first = false;
        serde_json::to_writer(&mut *w, key).map_err(io_error)?;
        w.write_all(b":")?;
        if !stream(key, w)? {
            serde_json::to_writer(&mut *w, value).map_err(io_error)?;
        }
    }
    w.write_all(b"}")
}

/// Writes the canonical form of an array, element by element: each one's
/// text form parsed back and written canonically (what the whole document's
/// canonical form holds there), so only one element is held at a time.
pub fn write_canonical_array<'a, T: serde::Serialize + 'a>(
    w: &mut dyn std::io::Write,
    items: impl IntoIterator<Item = &'a T>,
) -> std::io::Result<()> {
    w.write_all(b"[")?;
    let mut text = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            w.write_all(b",")?;
        }
        text.clear();
        serde_json::to_writer(&mut text, item).map_err(io_error)?;
        let v: Value = serde_json::from_slice(&text).map_err(io_error)?;
        serde_json::to_writer(&mut *w, &v).map_err(io_error)?;
    }
    w.write_all(b"]")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_keys_are_refused() {
        assert!(parse_strict(r#"{"a": 1, "b": {"c": 2}}"#).is_ok());
        let e = parse_strict(r#"{"a": 1, "a": 2}"#).unwrap_err().to_string();
        assert!(e.contains("duplicate key \"a\""), "{e}");
        assert!(parse_strict(r#"{"x": [{"k": 1, "k": 1}]}"#).is_err());
    }

    #[test]
    fn parser_messages_are_one_short_line() {
        assert_eq!(one_line("unknown variant `a\nb`"), "unknown variant `a\\nb`");
        let long = one_line(&"x".repeat(200_000));
        assert!(long.len() < MESSAGE_MAX + 40 && long.ends_with("(200000 characters)"), "{long}");
    }

    #[test]
    fn floats_read_back_exactly() {
        // serde_json without float_roundtrip reads this one ULP off.
        let text = "0.9405025";
        let v = parse_strict(text).unwrap();
        assert_eq!(v.as_f64().unwrap().to_bits(), text.parse::<f64>().unwrap().to_bits());
    }
}
