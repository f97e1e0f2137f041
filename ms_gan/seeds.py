"""Named random streams: every consumer of a run's ``--seed`` draws from its own stream.

NumPy's ``default_rng([seed, STREAM, ...])`` gives independent generators for different
stream numbers, so the training noise, the sample-grid noise and the evaluation's
baseline split never share draws, and adding one consumer does not shift another's.
The numbers are arbitrary but fixed: changing one changes every run's results.
"""

TRAIN_NOISE = 7919          # noise of G's and D's updates (per rank)
GRID_NOISE = 104729         # the fixed latent vectors of the sample grids (fixed_noise.npy)
BASELINE_SPLIT = 5          # eval: the two halves of the reference set for the real-vs-real baseline
