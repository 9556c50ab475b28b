//! The shape benchmark natively, until the command line has `bench
//! --shapes`: `cargo run --release --example bench_shapes -- [OUT.json]
//! [ROUNDS] [SHAPES]` prints the table and saves the JSON (default
//! bench/shapes-native.json, 5 rounds, shapes `128/64,256-256/128,1024-1024/128`).

use std::time::Instant;

use reprolab::bench;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let out = args.first().cloned().unwrap_or_else(|| "bench/shapes-native.json".into());
    let mut opts = bench::BenchOptions::default();
    if let Some(r) = args.get(1) {
        opts.rounds = r.parse().unwrap_or_else(|_| {
            eprintln!("bench_shapes: rounds: expected a whole number, got {r:?}");
            std::process::exit(2)
        });
    }
    if let Some(text) = args.get(2) {
        opts.shapes = bench::parse_shapes(text).unwrap_or_else(|e| {
            eprintln!("bench_shapes: {e}");
            std::process::exit(2)
        });
    }
    // BENCH_ONLY="cpu-1 simd,cpu-2x4 simd" keeps only those contenders (profiling).
    if let Ok(only) = std::env::var("BENCH_ONLY") {
        opts.contenders.retain(|c| only.split(',').any(|o| o.trim() == c.name()));
    }
    let t0 = Instant::now();
    let clock = move || t0.elapsed().as_secs_f64() * 1e3;
    let (peak, why) = bench::measure_peak_gflops(&clock, 5);
    opts.peak_gflops_per_core = peak;
    opts.peak_assumption = why;
    match bench::run(&opts, &clock) {
        Ok(report) => {
            print!("{}", report.table());
            let text = serde_json::to_string_pretty(&report).expect("plain data") + "\n";
            if let Err(e) = std::fs::write(&out, text) {
                eprintln!("bench_shapes: cannot write {out}: {e}");
                std::process::exit(1);
            }
            println!("saved {out}");
        }
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    }
}
