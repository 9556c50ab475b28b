//! Writes `(input bits, output bits)` tables of the `libm` crate's expf,
//! logf, tanhf and expm1f, which `reprolab_ref.py elementary` compares with
//! its ports. Built by `tests/reference/run.sh` as a throwaway crate under
//! target/reference/ that depends on the exact `libm` version of Cargo.lock.
//!
//! Inputs: every 4093rd bit pattern (both signs, zeros, subnormals,
//! infinities, NaNs), plus 2048 consecutive patterns around each branch
//! threshold of the four functions and around +-1, +-2, +-0.5.

use std::io::Write;

type Fn32 = fn(f32) -> f32;

fn main() {
    if let Err(e) = run() {
        eprintln!("libm_sweep: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let dir = std::env::args().nth(1).ok_or("usage: libm_sweep OUT_DIR")?;
    let mut inputs: Vec<u32> = (0..=u32::MAX).step_by(4093).collect();
    // Branch thresholds of expf, logf, tanhf and expm1f, and a few plain values.
    let expf = [0x42ae_ac50, 0x42b1_7218, 0x42cf_f1b5, 0x3eb1_7218, 0x3f85_1592, 0x3900_0000];
    let logf = [0x3f35_04f3, 0x0080_0000, 0x3f80_0000];
    let tanhf = [0x3f0c_9f54, 0x4120_0000, 0x3e82_c578];
    let expm1f = [0x4195_b844, 0x42b1_7217, 0x3300_0000];
    let plain = [0x4000_0000, 0x3f00_0000];
    let centres: Vec<u32> = [&expf[..], &logf, &tanhf, &expm1f, &plain].concat();
    for c in centres {
        for sign in [0u32, 0x8000_0000] {
            for d in 0..2048u32 {
                inputs.push((c.wrapping_sub(1024).wrapping_add(d)) | sign);
            }
        }
    }
    inputs.extend([0, 0x8000_0000, 1, 0x8000_0001, 0x7f80_0000, 0xff80_0000, 0x7fc0_0000, 0x7f7f_ffff]);
    let fns: [(&str, Fn32); 4] =
        [("expf", libm::expf), ("logf", libm::logf), ("tanhf", libm::tanhf), ("expm1f", libm::expm1f)];
    for (name, f) in fns {
        let path = format!("{dir}/{name}.bin");
        let fail = |e: std::io::Error| format!("{path}: {e}");
        let mut out = std::io::BufWriter::new(std::fs::File::create(&path).map_err(fail)?);
        for &x in &inputs {
            out.write_all(&x.to_le_bytes()).map_err(fail)?;
            out.write_all(&f(f32::from_bits(x)).to_bits().to_le_bytes()).map_err(fail)?;
        }
        out.flush().map_err(fail)?;
    }
    println!("{} inputs per function", inputs.len());
    Ok(())
}
