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
    let v: Value = parse_strict(text).map_err(|e| {
        let hint = if e.is_eof() { " (the file looks truncated)" } else { "" };
        Error::Record(format!("not a readable {what}: invalid JSON{hint}: {}", one_line(&e.to_string())))
    })?;
    let obj = v.as_object().ok_or_else(|| Error::Record(format!("not a {what}: expected a JSON object")))?;
    let key = format!("{what}_version");
    let found = obj.get(&key).ok_or_else(|| Error::Record(format!("not a {what}: no {key} field")))?;
    if found.as_u64() != Some(u64::from(version)) {
        return Err(Error::Record(format!(
            "{what} version {} is not supported: this reprolab {} reads version {version}",
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
    let mut v = v.clone();
    if let Some(o) = v.as_object_mut() {
        o.remove("checksum");
    }
    // serde_json's Map is a BTreeMap (no preserve_order): keys come out sorted.
    let text = serde_json::to_string(&v).expect("a JSON value serialises");
    crate::data::sha256_hex(text.as_bytes())
}

/// Seals a serialisable record: its checksum over the text form a reader sees
/// (f32 values print in their shortest form, which differs from their widened
/// f64 value).
pub fn seal<T: serde::Serialize>(record: &T) -> String {
    let text = serde_json::to_string(record).expect("a record serialises");
    checksum_of(&serde_json::from_str(&text).expect("a record parses back"))
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
