//! The CPU engine's path for workers elsewhere (the Web Workers of the
//! page and the npm package), run natively: worker engines load a step's
//! weights and compute chunks (`load_step`, `chunk_partial`, each drawing
//! only its chunk's dropout rows), a coordinator takes the partial results
//! as they arrive and finishes the step (`take_partial`, `apply_partials`).
//! Pinned, it gives the bits of the engine's own chunked step in any order
//! of arrival; free, the order of arrival is the order of the sum. Every
//! comparison is on exact bits.
#![cfg(not(target_arch = "wasm32"))]

use std::sync::Arc;

use reprolab::driver::{new_setup, Run};
use reprolab::hash::weights_hash;
use reprolab::manifest::first_divergence;
use reprolab::record::RunRecord;
use reprolab::setup::Setup;
use reprolab::sources::Source;
use reprolab::train::{combine, CpuEngine, Partial, Taken};
use reprolab::{Origin, Settings};

const STEPS: usize = 8;

fn settings(threads: usize, chunks: usize) -> Settings {
    let mut s = Settings::default();
    for (k, v) in [
        ("steps", STEPS.to_string()),
        ("threads", threads.to_string()),
        ("chunks", chunks.to_string()),
        ("hidden", "24,16".into()),
        ("dropout", "0.25".into()),
        ("batch_size", "30".into()),
    ] {
        s.set(k, &v, Origin::Override).unwrap();
    }
    s
}

/// A coordinator and `workers` worker engines of one run.
struct Pool {
    coordinator: CpuEngine,
    rec: RunRecord,
    workers: Vec<CpuEngine>,
    taken: Taken,
}

impl Pool {
    fn new(setup: Setup, workers: usize) -> Pool {
        let setup = Arc::new(setup);
        let rec = setup.new_record(weights_hash(&setup.initial_state().params));
        Pool {
            coordinator: CpuEngine::new(setup.clone(), setup.initial_state()),
            rec,
            workers: (0..workers).map(|_| CpuEngine::new(setup.clone(), setup.initial_state())).collect(),
            taken: Taken::default(),
        }
    }

    /// One step, the chunks arriving in `arrival` order, chunk `c`
    /// computed by worker `c % workers`.
    fn step(&mut self, arrival: &[usize]) {
        let t = self.rec.step;
        let params = self.coordinator.params().to_vec();
        for w in &mut self.workers {
            w.load_step(t, |p| p.copy_from_slice(&params));
        }
        let n = self.workers.len();
        let partials: Vec<(f32, Vec<f32>)> =
            (0..arrival.len()).map(|c| self.workers[c % n].chunk_partial(t, c, |g| g.to_vec()).unwrap()).collect();
        for &c in arrival {
            let (loss, grads) = &partials[c];
            self.coordinator.take_partial(&mut self.taken, c, *loss, |b| b.copy_from_slice(grads)).unwrap();
        }
        self.coordinator.apply_partials(&mut self.rec, &mut self.taken).unwrap();
    }
}

impl Pool {
    /// One step in which the coordinator computes the chunks `own` itself
    /// (`own_chunk`, at their place in `arrival`) and the first worker the
    /// others.
    fn step_sharing(&mut self, own: &[usize], arrival: &[usize]) {
        let t = self.rec.step;
        let params = self.coordinator.params().to_vec();
        self.workers[0].load_step(t, |p| p.copy_from_slice(&params));
        let partials: Vec<Option<(f32, Vec<f32>)>> = (0..arrival.len())
            .map(|c| (!own.contains(&c)).then(|| self.workers[0].chunk_partial(t, c, |g| g.to_vec()).unwrap()))
            .collect();
        for &c in arrival {
            match &partials[c] {
                None => self.coordinator.own_chunk(&mut self.taken, c).unwrap(),
                Some((loss, grads)) => {
                    self.coordinator.take_partial(&mut self.taken, c, *loss, |b| b.copy_from_slice(grads)).unwrap()
                }
            }
        }
        self.coordinator.apply_partials(&mut self.rec, &mut self.taken).unwrap();
    }
}

fn native(setup: Setup) -> Run {
    let mut run = Run::cpu(setup);
    while run.step_now().is_some() {}
    run
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn pinned_workers_give_the_engines_bits_in_any_order_of_arrival() {
    let reference = native(new_setup(settings(2, 4), &[]).unwrap());
    assert_eq!(reference.record.hash_chain.len(), STEPS);
    let orders: [&[usize]; 3] = [&[0, 1, 2, 3], &[3, 1, 0, 2], &[2, 3, 1, 0]];
    for (workers, order) in [(2, orders[0]), (2, orders[1]), (3, orders[2]), (1, orders[1])] {
        let mut pool = Pool::new(new_setup(settings(2, 4), &[]).unwrap(), workers);
        for _ in 0..STEPS {
            pool.step(order);
        }
        let what = format!("{workers} workers, arrival {order:?}");
        assert_eq!(first_divergence(&reference.record.hash_chain, &pool.rec.hash_chain), None, "{what}");
        assert_eq!(bits(reference.params()), bits(pool.coordinator.params()), "{what}");
        assert_eq!(reference.record.train_loss, pool.rec.train_loss, "{what}");
    }
}

#[test]
fn free_workers_sum_in_order_of_arrival() {
    let free = || new_setup(settings(2, 4), &[Source::CpuThreads]).unwrap();
    let pinned = native(new_setup(settings(2, 4), &[]).unwrap());
    // In chunk order: the pinned bits.
    let mut in_order = Pool::new(free(), 2);
    // Another order: another sum, as `combine` in that order gives it.
    let mut shuffled = Pool::new(free(), 2);
    let order = [2, 0, 3, 1];
    for _ in 0..STEPS {
        in_order.step(&[0, 1, 2, 3]);
        // The first step's sum, checked against `combine` in arrival order.
        if shuffled.rec.step == 0 {
            let params = shuffled.coordinator.params().to_vec();
            let w = &mut shuffled.workers[0];
            w.load_step(0, |p| p.copy_from_slice(&params));
            let partials: Vec<Partial> = order
                .iter()
                .map(|&c| {
                    let (loss_sum, grads) = w.chunk_partial(0, c, |g| g.to_vec()).unwrap();
                    Partial { chunk: c, loss_sum, grads }
                })
                .collect();
            let (loss_sum, _) = combine(&partials);
            shuffled.step(&order);
            let batch = 30.0f32;
            assert_eq!(shuffled.rec.train_loss[0].to_bits(), (loss_sum * (1.0 / batch)).to_bits());
        } else {
            shuffled.step(&order);
        }
    }
    assert_eq!(first_divergence(&pinned.record.hash_chain, &in_order.rec.hash_chain), None);
    assert!(
        first_divergence(&pinned.record.hash_chain, &shuffled.rec.hash_chain).is_some(),
        "another order of arrival left every bit: the sum would not follow it"
    );
}

#[test]
fn wrong_partial_results_are_refused() {
    let mut pool = Pool::new(new_setup(settings(2, 4), &[]).unwrap(), 1);
    let n = pool.coordinator.params().len();
    let zeros = |b: &mut [f32]| b.fill(0.0);
    let w = &mut pool.workers[0];
    w.load_step(0, |_| {});
    let e = w.chunk_partial(0, 4, |_| ()).unwrap_err().to_string();
    assert!(e.contains("chunk 4 of 4 does not exist"), "{e}");
    let c = &mut pool.coordinator;
    let e = c.take_partial(&mut pool.taken, 7, 0.0, zeros).unwrap_err().to_string();
    assert!(e.contains("chunk 7 of 4 does not exist"), "{e}");
    c.take_partial(&mut pool.taken, 1, 0.0, zeros).unwrap();
    let e = c.take_partial(&mut pool.taken, 1, 0.0, zeros).unwrap_err().to_string();
    assert!(e.contains("chunk 1 of step 0 arrived twice"), "{e}");
    let e = c.own_chunk(&mut pool.taken, 1).unwrap_err().to_string();
    assert!(e.contains("chunk 1 of step 0 arrived twice"), "{e}");
    let e = c.own_chunk(&mut pool.taken, 4).unwrap_err().to_string();
    assert!(e.contains("chunk 4 of 4 does not exist"), "{e}");
    let e = c.apply_partials(&mut pool.rec, &mut pool.taken).unwrap_err().to_string();
    assert!(e.contains("expected one partial result per chunk 0..4 of step 0, got chunks [1]"), "{e}");
    assert_eq!(pool.rec.step, 0, "a refused step is not taken");
    // A run without chunks takes none.
    let mut whole = Pool::new(new_setup(settings(1, 1), &[]).unwrap(), 1);
    let e = whole.coordinator.take_partial(&mut whole.taken, 0, 0.0, zeros).unwrap_err().to_string();
    assert!(e.contains("does not exist"), "{e}");
    assert_eq!(n, whole.coordinator.params().len());
}

#[test]
fn a_coordinator_computing_some_chunks_itself_gives_the_same_bits() {
    let reference = native(new_setup(settings(2, 4), &[]).unwrap());
    let cases: [(&[usize], &[usize]); 4] =
        [(&[0, 1], &[0, 1, 2, 3]), (&[0], &[2, 0, 3, 1]), (&[3], &[3, 1, 0, 2]), (&[0, 1, 2, 3], &[1, 0, 3, 2])];
    for (own, order) in cases {
        let mut pool = Pool::new(new_setup(settings(2, 4), &[]).unwrap(), 1);
        for _ in 0..STEPS {
            pool.step_sharing(own, order);
        }
        let what = format!("own chunks {own:?}, arrival {order:?}");
        assert_eq!(first_divergence(&reference.record.hash_chain, &pool.rec.hash_chain), None, "{what}");
        assert_eq!(bits(reference.params()), bits(pool.coordinator.params()), "{what}");
    }
    // Free: the coordinator's chunks take their place in the order of
    // arrival like any other; in chunk order, the pinned bits, in another
    // order another sum.
    let free = || new_setup(settings(2, 4), &[Source::CpuThreads]).unwrap();
    let (mut in_order, mut shuffled) = (Pool::new(free(), 1), Pool::new(free(), 1));
    for _ in 0..STEPS {
        in_order.step_sharing(&[0, 1], &[0, 1, 2, 3]);
        shuffled.step_sharing(&[0, 1], &[2, 1, 3, 0]);
    }
    assert_eq!(first_divergence(&reference.record.hash_chain, &in_order.rec.hash_chain), None);
    assert!(first_divergence(&reference.record.hash_chain, &shuffled.rec.hash_chain).is_some());
}
