//! Pinned runs are bit-identical; each seeded source set free makes runs
//! differ, and pinning it again makes them equal; re-seeding one stream
//! leaves the other streams' draws unchanged. Every comparison is on exact
//! bits (hash chains over `f32::to_bits`).
#![cfg(not(target_arch = "wasm32"))]

use reprolab::manifest::first_divergence;
use reprolab::rng::{Stream, StreamSeeds};
use reprolab::sources::Source;
use reprolab::train::init_params;
use reprolab::{Origin, Settings, Trainer};

fn settings(steps: usize) -> Settings {
    let mut s = Settings::default();
    s.set("steps", &steps.to_string(), Origin::Override).unwrap();
    s
}

fn run(free: &[Source]) -> Trainer {
    let mut t = Trainer::with_free(settings(60), free).unwrap();
    while t.step().is_some() {}
    t
}

fn assert_same(a: &Trainer, b: &Trainer, what: &str) {
    if let Some(step) = first_divergence(&a.hash_chain, &b.hash_chain) {
        panic!(
            "{what}: hash chains part at step {step}: {:?} vs {:?}",
            a.hash_chain.get(step - 1),
            b.hash_chain.get(step - 1)
        );
    }
    let bits = |t: &Trainer| t.params.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(a), bits(b), "{what}: final weights differ");
}

#[test]
fn same_seed_same_bits() {
    let (a, b) = (run(&[]), run(&[]));
    assert_eq!(a.hash_chain.len(), 60);
    assert_same(&a, &b, "two pinned runs");
}

#[test]
fn each_seeded_source_is_a_real_switch() {
    let pinned = run(&[]);
    for source in [Source::Init, Source::Shuffle, Source::Dropout] {
        let free = run(&[source]);
        let stream = source.stream().unwrap();
        assert_ne!(free.seeds.get(stream), pinned.seeds.get(stream), "{source:?}: free drew the pinned seed");
        let step = first_divergence(&pinned.hash_chain, &free.hash_chain);
        assert!(step.is_some(), "{source:?} free: the hash chain did not change");
        if source == Source::Init {
            assert_ne!(free.initial_hash, pinned.initial_hash);
        } else {
            assert_eq!(free.initial_hash, pinned.initial_hash, "{source:?} free moved the initial weights");
        }
        eprintln!("{source:?} free: chains part at step {}", step.unwrap());
        // Pinned again: identical to the first pinned run.
        assert_same(&run(&[]), &pinned, &format!("{source:?} pinned again"));
        // Two free runs also differ from each other (fresh entropy each time).
        assert!(first_divergence(&free.hash_chain, &run(&[source]).hash_chain).is_some());
    }
}

#[test]
fn a_free_run_replays_from_its_recorded_seed() {
    let free = run(&[Source::Shuffle, Source::Dropout]);
    let mut again = Trainer::new(settings(60), free.seeds.clone(), free.free.clone()).unwrap();
    while again.step().is_some() {}
    assert_same(&free, &again, "free run replayed from its recorded seeds");
}

#[test]
fn reseeding_one_stream_leaves_the_others_alone() {
    let base = StreamSeeds::from_master(1);
    let build = |seeds: StreamSeeds| {
        let mut t = Trainer::new(settings(30), seeds, vec![]).unwrap();
        while t.step().is_some() {}
        t
    };
    let a = build(base.clone());
    for stream in Stream::ALL {
        let mut seeds = base.clone();
        seeds.set(stream, 12345);
        let b = build(seeds);
        // init: initial weights move only when `init` moves.
        assert_eq!(a.initial_hash == b.initial_hash, stream != Stream::Init, "{stream:?}");
        // shuffle: the split moves only when `shuffle` moves.
        assert_eq!(a.val_idx == b.val_idx, stream != Stream::Shuffle, "{stream:?}");
        // dropout: the same masks unless `dropout` moves.
        let words = |seed| {
            let mut r = reprolab::rng::StreamRng::new(Stream::Dropout, seed);
            let mut w = [0u32; 64];
            r.fill_words(7, 0, &mut w);
            w
        };
        assert_eq!(words(a.seeds.dropout) == words(b.seeds.dropout), stream != Stream::Dropout);
        // `data` does not touch digits at all: the chain is unchanged.
        if stream == Stream::Data {
            assert_same(&a, &b, "digits with another data seed");
        }
    }
    // And the init draws of a layer do not depend on the network's other layers.
    let n1 = reprolab::model::Network::new(64, &[16], 10, reprolab::config::Activation::Relu);
    let n2 = reprolab::model::Network::new(64, &[16, 16], 10, reprolab::config::Activation::Relu);
    let (p1, p2) = (init_params(&n1, 5), init_params(&n2, 5));
    assert_eq!(p1[..64 * 16], p2[..64 * 16]);
}
