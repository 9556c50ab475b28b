//! Writes `(input bits, output bits)` tables of the `libm` crate's expf,
//! logf, tanhf and expm1f, which `reprolab_ref.py elementary` compares with
//! its ports. Built by `tests/reference/run.sh` as a throwaway crate under
//! target/reference/ that depends on the exact `libm` version of Cargo.lock.
//!
//! Inputs: every 4093rd bit pattern (both signs, zeros, subnormals,
//! infinities, NaNs), plus 2048 consecutive patterns around each branch
//! threshold of the four functions and around +-1, +-2, +-0.5.

use std::io::Write;

fn main() {
    let dir = std::env::args().nth(1).expect("usage: libm_sweep OUT_DIR");
    let mut inputs: Vec<u32> = (0..=u32::MAX).step_by(4093).collect();
    let centres: [u32; 17] = [
        0x42ae_ac50, 0x42b1_7218, 0x42cf_f1b5, 0x3eb1_7218, 0x3f85_1592, 0x3900_0000, // expf
        0x3f35_04f3, 0x0080_0000, 0x3f80_0000, // logf
        0x3f0c_9f54, 0x4120_0000, 0x3e82_c578, // tanhf
        0x4195_b844, 0x42b1_7217, 0x3300_0000, // expm1f
        0x4000_0000, 0x3f00_0000,
    ];
    for c in centres {
        for sign in [0u32, 0x8000_0000] {
            for d in 0..2048u32 {
                inputs.push((c.wrapping_sub(1024).wrapping_add(d)) | sign);
            }
        }
    }
    inputs.extend([0, 0x8000_0000, 1, 0x8000_0001, 0x7f80_0000, 0xff80_0000, 0x7fc0_0000, 0x7f7f_ffff]);
    let fns: [(&str, fn(f32) -> f32); 4] =
        [("expf", libm::expf), ("logf", libm::logf), ("tanhf", libm::tanhf), ("expm1f", libm::expm1f)];
    for (name, f) in fns {
        let path = format!("{dir}/{name}.bin");
        let mut out = std::io::BufWriter::new(std::fs::File::create(&path).expect("create the table"));
        for &x in &inputs {
            out.write_all(&x.to_le_bytes()).unwrap();
            out.write_all(&f(f32::from_bits(x)).to_bits().to_le_bytes()).unwrap();
        }
        out.flush().unwrap();
    }
    println!("{} inputs per function", inputs.len());
}
