"""The built-in digits: UCI optdigits (test part), 1,797 images of 8x8 pixels in 0..16.

The same data scikit-learn ships as ``load_digits``; stored here as a compressed
``.npz`` (images uint8 (1797, 8, 8), labels uint8 (1797,)) so no download and no
scikit-learn are needed. Licence: CC BY 4.0 (UCI Machine Learning Repository,
E. Alpaydin and C. Kaynak, 1998).
"""
import os

import numpy as np

DIGITS_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "digits8x8.npz")
MAX_VALUE = 16  # pixel values are counts of on-pixels in 4x4 blocks: 0..16


def load_digits():
    """Return (images uint8 (1797, 8, 8) in 0..16, labels uint8 (1797,))."""
    with np.load(DIGITS_FILE) as data:
        return data["images"], data["labels"]


def split_indices(n, holdout_fraction=0.2, seed=0):
    """A fixed train/held-out split of ``n`` items (used by the classifier and eval)."""
    order = np.random.default_rng(seed).permutation(n)
    n_hold = int(round(n * holdout_fraction))
    return np.sort(order[n_hold:]), np.sort(order[:n_hold])
