// The guided story: the new data scientist who reruns a colleague's baseline
// and gets other numbers. Each chapter sets the page's controls (visible in
// the form and the URL), trains two runs and says what changed and what the
// page found. Run 1 is always the colleague's recorded baseline; run 2 is the
// re-run of its manifest.

// The colleague's baseline: an older data version and a learning rate given
// on the command line (an override), kept short so that the story is quick.
export const STORY_SETTINGS = {
  dataset: 'digits@1',
  learning_rate: '0.02',
  seed: '7',
  steps: '300',
  eval_every: '25',
};

const parted = (o) => (o.first == null ? 'the runs agree at every step' : `the bits part at step ${o.first}`);
const causes = (o) => (o.causes.length ? ` The diff names the cause: ${o.causes.join(', ')}.` : '');

export const CHAPTERS = [
  {
    title: '1. The baseline',
    text:
      'A colleague trained this model last year: the digits as they were then (digits@1, 1797 images), learning ' +
      'rate 0.02 passed on the command line, seed 7. Run 1 is that run; run 2 re-runs its manifest the same day, ' +
      'with every source pinned.',
    settings: {},
    free: [],
    result: (o) => `Verdict: ${o.verdict}; ${parted(o)}. This is the number the colleague reported.`,
  },
  {
    title: '2. The data set grew',
    text:
      'A year on, the new data scientist reruns the script. The folder of images has grown by 300 shifted copies, ' +
      'and "digits" now means digits@2. Only data_drift is free: everything else is as recorded.',
    settings: {},
    free: ['data_drift'],
    result: (o) => `Verdict: ${o.verdict}; ${parted(o)}: another split, other batches from the first step.${causes(o)}`,
  },
  {
    title: '3. A hyper-parameter silently differed',
    text:
      'The data is pinned back to digits@1, but the script is run without the flags: the learning rate falls back ' +
      "to the code's default, 0.05, and nobody notices. Only hparam_drift is free.",
    settings: {},
    free: ['hparam_drift'],
    result: (o) => `Verdict: ${o.verdict}; ${parted(o)}: bigger steps from the first update on.${causes(o)}`,
  },
  {
    title: '4. Only randomness left free',
    text:
      'Data and flags are now exactly as recorded, but the script draws its random numbers fresh: the initial ' +
      'weights, the shuffling and the dropout masks come from new seeds, as most frameworks do by default.',
    settings: {},
    free: ['init', 'shuffle', 'dropout'],
    result: (o) =>
      `Verdict: ${o.verdict}; ${parted(o)}. The final errors are close, but not the same numbers.${causes(o)}`,
  },
  {
    title: '5. Everything pinned',
    text:
      'Every source pinned to the record: the same data version, the same flags, the same seeds for every stream, ' +
      'the same engine and reduction order, the same backend.',
    settings: {},
    free: [],
    result: (o) =>
      o.verdict === 'identical'
        ? 'Verdict: identical. The curves coincide to the bit: every step has the same weight hash as the baseline.'
        : `Verdict: ${o.verdict}; ${parted(o)}.${causes(o)}`,
  },
];
