//! The digits data carried in the crate is exactly the documented file: the
//! gzip's SHA-256 is the one in data/README.md, and decompressing it gives
//! the embedded bytes, whose SHA-256 is the data set's fingerprint.
#![cfg(not(target_arch = "wasm32"))]

use std::io::Read;

use reprolab::data::{sha256_hex, DIGITS_V1, DIGITS_V1_SHA256};

const GZ_SHA256: &str = "09f66e6debdee2cd2b5ae59e0d6abbb73fc2b0e0185d2e1957e9ebb51e23aa22";

#[test]
fn embedded_digits_are_the_documented_file() {
    let gz = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/data/digits.csv.gz")).unwrap();
    assert_eq!(sha256_hex(&gz), GZ_SHA256, "data/digits.csv.gz is not the scikit-learn 1.9.1 file");
    let mut csv = String::new();
    flate2::read::GzDecoder::new(&gz[..]).read_to_string(&mut csv).unwrap();
    let mut bytes = Vec::new();
    for line in csv.lines().filter(|l| !l.is_empty()) {
        let row: Vec<u8> = line.split(',').map(|v| v.trim().parse().unwrap()).collect();
        assert_eq!(row.len(), 65);
        bytes.extend(row);
    }
    assert_eq!(bytes.len(), 1797 * 65);
    assert!(bytes == DIGITS_V1, "data/digits-v1.bin is not the decompressed CSV");
    assert_eq!(sha256_hex(DIGITS_V1), DIGITS_V1_SHA256);
}
