//! Pinned runs are bit-identical; each seeded source set free makes runs
//! differ, and pinning it again makes them equal; re-seeding one stream
//! leaves the other streams' draws unchanged. Every comparison is on exact
//! bits (hash chains over `f32::to_bits`).
#![cfg(not(target_arch = "wasm32"))]

use reprolab::driver::{new_setup, Run};
use reprolab::manifest::first_divergence;
use reprolab::rng::{Stream, StreamSeeds};
use reprolab::setup::{init_params, Setup};
use reprolab::sources::Source;
use reprolab::{Origin, Settings};

fn settings(steps: usize) -> Settings {
    let mut s = Settings::default();
    s.set("steps", &steps.to_string(), Origin::Override).unwrap();
    s
}

fn train(setup: Setup) -> Run {
    let mut t = Run::cpu(setup);
    while t.step_now().is_some() {}
    t
}

fn run(free: &[Source]) -> Run {
    train(new_setup(settings(60), free).unwrap())
}

fn assert_same(a: &Run, b: &Run, what: &str) {
    let (ca, cb) = (&a.record.hash_chain, &b.record.hash_chain);
    if let Some(step) = first_divergence(ca, cb) {
        panic!("{what}: hash chains part at step {step}: {:?} vs {:?}", ca.get(step - 1), cb.get(step - 1));
    }
    let bits = |t: &Run| t.params().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(a), bits(b), "{what}: final weights differ");
}

#[test]
fn same_seed_same_bits() {
    let (a, b) = (run(&[]), run(&[]));
    assert_eq!(a.record.hash_chain.len(), 60);
    assert_same(&a, &b, "two pinned runs");
}

#[test]
fn each_seeded_source_is_a_real_switch() {
    let pinned = run(&[]);
    for source in [Source::Init, Source::Shuffle, Source::Dropout] {
        let free = run(&[source]);
        let stream = source.stream().unwrap();
        assert_ne!(
            free.record.seeds.get(stream),
            pinned.record.seeds.get(stream),
            "{source:?}: free drew the pinned seed"
        );
        let step = first_divergence(&pinned.record.hash_chain, &free.record.hash_chain);
        assert!(step.is_some(), "{source:?} free: the hash chain did not change");
        if source == Source::Init {
            assert_ne!(free.record.initial_hash, pinned.record.initial_hash);
        } else {
            assert_eq!(
                free.record.initial_hash, pinned.record.initial_hash,
                "{source:?} free moved the initial weights"
            );
        }
        eprintln!("{source:?} free: chains part at step {}", step.unwrap());
        // Pinned again: identical to the first pinned run.
        assert_same(&run(&[]), &pinned, &format!("{source:?} pinned again"));
        // Two free runs also differ from each other (fresh entropy each time).
        assert!(first_divergence(&free.record.hash_chain, &run(&[source]).record.hash_chain).is_some());
    }
}

#[test]
fn a_free_run_replays_from_its_recorded_seed() {
    let free = run(&[Source::Shuffle, Source::Dropout]);
    let again = train(Setup::new(settings(60), free.record.seeds.clone(), free.record.free.clone()).unwrap());
    assert_same(&free, &again, "free run replayed from its recorded seeds");
}

#[test]
fn reseeding_one_stream_leaves_the_others_alone() {
    let base = StreamSeeds::from_master(1);
    let build = |seeds: StreamSeeds| train(Setup::new(settings(30), seeds, vec![]).unwrap());
    let mut a = build(base.clone());
    for stream in Stream::ALL {
        let mut seeds = base.clone();
        seeds.set(stream, 12345);
        let mut b = build(seeds);
        // init: initial weights move only when `init` moves.
        assert_eq!(a.record.initial_hash == b.record.initial_hash, stream != Stream::Init, "{stream:?}");
        // shuffle: the split moves only when `shuffle` moves.
        assert_eq!(a.setup().val_idx == b.setup().val_idx, stream != Stream::Shuffle, "{stream:?}");
        // dropout: the engine draws the same masks unless `dropout` moves.
        let masks = |r: &mut Run| {
            let (engine, _) = r.cpu_engine().expect("a CPU run");
            [0usize, 7, 29].iter().map(|&t| engine.masks_for_step(t)).collect::<Vec<_>>()
        };
        let (ma, mb) = (masks(&mut a), masks(&mut b));
        assert!(ma.iter().flatten().flatten().any(|k| !k), "no unit was dropped: dropout is off");
        assert_eq!(ma == mb, stream != Stream::Dropout, "{stream:?}: the masks drawn");
        // `data` does not touch digits at all: the chain is unchanged.
        if stream == Stream::Data {
            assert_same(&a, &b, "digits with another data seed");
        }
    }
    // And the init draws of a layer do not depend on the network's other layers.
    let n1 = reprolab::model::Network::new(64, &[16], 10, reprolab::model::Activation::Relu);
    let n2 = reprolab::model::Network::new(64, &[16, 16], 10, reprolab::model::Activation::Relu);
    let (p1, p2) = (init_params(&n1, 5), init_params(&n2, 5));
    assert_eq!(p1[..64 * 16], p2[..64 * 16]);
}
