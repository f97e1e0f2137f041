"""Sample-quality metrics for GANs, in pure NumPy (float64 inside).

Every metric takes plain arrays: features ``(N, D)`` from a digit classifier's
penultimate layer, softmax probabilities ``(N, K)`` or predicted labels ``(N,)``.
Which network makes the features is the caller's business (see the rest of
:mod:`ms_gan.eval`); nothing here imports MindSpore.

* **Fréchet distance** (:func:`frechet_distance`, :func:`frechet_feature_distance`):
  fit a Gaussian to each feature set and take
  ``||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2))``. With Inception features
  this is FID (Heusel et al., 2017, "GANs Trained by a Two Time-Scale Update
  Rule Converge to a Local Nash Equilibrium"); with a digit classifier's
  features it is the "Fréchet classifier distance" (FCD). Lower is better.
* **Kernel distance** (:func:`kid`): the unbiased estimator of the squared
  maximum mean discrepancy with the cubic polynomial kernel
  ``k(x, y) = (x.y / D + 1)^3``, averaged over random subsets (Bińkowski et al.,
  2018, "Demystifying MMD GANs"; same estimator as torch-fidelity and
  clean-fid). Unbiased, so it can be slightly negative; lower is better.
* **Classifier score** (:func:`classifier_score`): the Inception-Score formula
  ``exp(E_x KL(p(y|x) || p(y)))`` on a classifier's softmax outputs (Salimans
  et al., 2016, "Improved Techniques for Training GANs"). It lies in ``[1, K]``:
  ``K`` when every sample is classified confidently and the classes are
  balanced. Higher is better.
* **Inception Score** (:func:`inception_score`): the same formula on the softmax
  of Inception-v3 logits (1008 classes), in 10 splits by default as in the
  original code and torch-fidelity.
* **Precision / recall** (:func:`precision_recall`): Kynkäänniemi et al., 2019,
  "Improved Precision and Recall Metric for Assessing Generative Models".
  Each point gets a ball reaching its k-th nearest neighbour within its own
  set; precision is the share of fakes inside some real ball (fidelity),
  recall the share of reals inside some fake ball (diversity).
* **Class coverage** (:func:`class_coverage`): histogram of predicted classes,
  how many classes appear, and ``KL(p || uniform)`` in nats, a direct check
  for mode collapse on a balanced dataset such as digits.
"""
import numpy as np

from ms_gan.errors import UserError

__all__ = [
    "frechet_distance",
    "feature_statistics",
    "frechet_feature_distance",
    "kid",
    "classifier_score",
    "softmax",
    "inception_score",
    "precision_recall",
    "class_coverage",
]

# Elements of one block of the pairwise-distance matrix (float64: 32 MB). The
# temporaries of one block stay under ~150 MB, whatever the set sizes.
_BLOCK_ELEMENTS = 4_000_000


def _as_matrix(x, name, min_rows=1):
    """Return ``x`` as a finite float64 ``(N, D)`` array, or raise UserError."""
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 2:
        raise UserError(f"{name} must be a 2-D array (samples, features); got shape {arr.shape}")
    if arr.shape[0] < min_rows:
        raise UserError(f"{name} needs at least {min_rows} samples; got {arr.shape[0]}")
    if arr.shape[1] < 1:
        raise UserError(f"{name} has no feature columns (shape {arr.shape})")
    if not np.all(np.isfinite(arr)):
        raise UserError(f"{name} contains NaN or inf; check the model that produced it (diverged training?)")
    return arr


def _same_width(a, b, name_a, name_b):
    if a.shape[1] != b.shape[1]:
        raise UserError(
            f"{name_a} has {a.shape[1]} features but {name_b} has {b.shape[1]}; "
            "extract both with the same network")


def _psd_sqrt(sigma):
    """Symmetric square root of a covariance, clipping round-off negative eigenvalues."""
    w, v = np.linalg.eigh(sigma)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def frechet_distance(mu1, sigma1, mu2, sigma2):
    """Fréchet distance between the Gaussians N(mu1, sigma1) and N(mu2, sigma2).

    ``Tr sqrt(S1 S2)`` is computed as ``sum sqrt(eig(A))`` with the symmetric
    ``A = sqrt(S1) S2 sqrt(S1)``, which has the eigenvalues of ``S1 S2``. Both
    decompositions use ``eigh`` and clip round-off negatives to 0, so singular
    covariances (fewer samples than features) work and nothing goes complex,
    unlike the usual ``scipy.linalg.sqrtm`` of the non-symmetric ``S1 S2``. The
    result is clipped at 0 for the same reason.

    Args:
        mu1, mu2: means, shape ``(D,)``.
        sigma1, sigma2: covariances, shape ``(D, D)``, symmetric positive semi-definite.

    Returns:
        The distance as a Python float (squared units of the features).
    """
    mu1 = np.atleast_1d(np.asarray(mu1, dtype=np.float64))
    mu2 = np.atleast_1d(np.asarray(mu2, dtype=np.float64))
    sigma1 = np.atleast_2d(np.asarray(sigma1, dtype=np.float64))
    sigma2 = np.atleast_2d(np.asarray(sigma2, dtype=np.float64))
    d = mu1.shape[0]
    if mu1.ndim != 1 or mu2.shape != (d,) or sigma1.shape != (d, d) or sigma2.shape != (d, d):
        raise UserError(
            f"frechet_distance needs means (D,) and covariances (D, D) of one D; got "
            f"{mu1.shape}, {sigma1.shape}, {mu2.shape}, {sigma2.shape}")
    for arr in (mu1, mu2, sigma1, sigma2):
        if not np.all(np.isfinite(arr)):
            raise UserError("frechet_distance got NaN or inf statistics; check the features they came from")
    # Symmetrise: covariances written to disk or summed in float32 drift slightly.
    sigma1 = 0.5 * (sigma1 + sigma1.T)
    sigma2 = 0.5 * (sigma2 + sigma2.T)
    root1 = _psd_sqrt(sigma1)
    inner = root1 @ sigma2 @ root1
    eig = np.linalg.eigvalsh(0.5 * (inner + inner.T))
    tr_covmean = np.sqrt(np.clip(eig, 0.0, None)).sum()
    diff = mu1 - mu2
    value = diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * tr_covmean
    return float(max(value, 0.0))


def feature_statistics(feats):
    """Mean and covariance of a feature set.

    Args:
        feats: ``(N, D)`` features, N >= 2.

    Returns:
        ``(mu, sigma)``: float64 arrays of shape ``(D,)`` and ``(D, D)``
        (unbiased covariance, ``N - 1`` in the denominator, as FID does).
    """
    feats = _as_matrix(feats, "feats", min_rows=2)
    mu = feats.mean(axis=0)
    sigma = np.atleast_2d(np.cov(feats, rowvar=False))
    return mu, sigma


def frechet_feature_distance(feats_a, feats_b):
    """Fréchet distance between Gaussians fitted to two feature sets (FID / FCD).

    Args:
        feats_a, feats_b: ``(N, D)`` and ``(M, D)`` features, N, M >= 2.

    Returns:
        The distance as a Python float.
    """
    feats_a = _as_matrix(feats_a, "feats_a", min_rows=2)
    feats_b = _as_matrix(feats_b, "feats_b", min_rows=2)
    _same_width(feats_a, feats_b, "feats_a", "feats_b")
    return frechet_distance(*feature_statistics(feats_a), *feature_statistics(feats_b))


def _poly_kernel(x, y):
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def kid(feats_a, feats_b, num_subsets=100, subset_size=1000, seed=0):
    """Kernel distance: unbiased MMD^2 with the cubic polynomial kernel.

    For each of ``num_subsets`` draws, ``m = min(subset_size, N, M)`` rows are
    taken without replacement from each set and
    ``sum_{i!=j} k(a_i, a_j) / (m(m-1)) + sum_{i!=j} k(b_i, b_j) / (m(m-1))
    - 2 sum_{i,j} k(a_i, b_j) / m^2`` is computed, as in torch-fidelity and
    clean-fid.

    Args:
        feats_a, feats_b: ``(N, D)`` and ``(M, D)`` features, N, M >= 2.
        num_subsets: number of random subsets averaged.
        subset_size: rows per subset; clipped to the smaller set.
        seed: seed of the subset draws (the result is deterministic).

    Returns:
        ``(mean, std)`` over the subsets as Python floats (``std`` with ddof=0,
        like torch-fidelity). The mean can be slightly negative.
    """
    feats_a = _as_matrix(feats_a, "feats_a", min_rows=2)
    feats_b = _as_matrix(feats_b, "feats_b", min_rows=2)
    _same_width(feats_a, feats_b, "feats_a", "feats_b")
    if int(num_subsets) < 1:
        raise UserError(f"num_subsets must be >= 1; got {num_subsets}")
    if int(subset_size) < 2:
        raise UserError(f"subset_size must be >= 2 (the estimator needs pairs); got {subset_size}")
    m = min(int(subset_size), feats_a.shape[0], feats_b.shape[0])
    rng = np.random.default_rng(seed)
    values = np.empty(int(num_subsets), dtype=np.float64)
    for i in range(values.size):
        x = feats_a[rng.choice(feats_a.shape[0], m, replace=False)]
        y = feats_b[rng.choice(feats_b.shape[0], m, replace=False)]
        k_xx = _poly_kernel(x, x)
        k_yy = _poly_kernel(y, y)
        k_xy = _poly_kernel(x, y)
        within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
        values[i] = within - 2.0 * k_xy.sum() / (m * m)
    return float(values.mean()), float(values.std())


def classifier_score(probs, splits=10):
    """Inception-Score formula on a classifier's softmax outputs.

    The samples are cut into ``splits`` consecutive chunks; each chunk scores
    ``exp(mean_x KL(p(y|x) || p(y)))`` with ``p(y)`` the chunk's mean
    prediction (``0 log 0 = 0``).

    Args:
        probs: ``(N, K)`` probabilities; rows must sum to 1 (softmax, not logits).
        splits: number of chunks, 1 <= splits <= N.

    Returns:
        ``(mean, std)`` over the chunks as Python floats (``std`` with ddof=0,
        like the original Inception Score code). Each chunk scores in ``[1, K]``.
    """
    probs = _as_matrix(probs, "probs")
    n = probs.shape[0]
    if not 1 <= int(splits) <= n:
        raise UserError(f"splits must be between 1 and the number of samples ({n}); got {splits}")
    if probs.min() < 0.0 or not np.allclose(probs.sum(axis=1), 1.0, atol=1e-3):
        raise UserError("probs must be probabilities (non-negative rows summing to 1); apply softmax to logits first")
    splits = int(splits)
    scores = np.empty(splits, dtype=np.float64)
    for i in range(splits):
        part = probs[i * n // splits:(i + 1) * n // splits]
        marginal = part.mean(axis=0, keepdims=True)
        # Zero probabilities contribute 0 (p log p -> 0); where part > 0 the
        # marginal is > 0 too, so the log is always finite where it is used.
        positive = part > 0
        ratio = np.where(positive, part, 1.0) / np.where(positive, marginal, 1.0)
        kl = np.sum(np.where(positive, part * np.log(ratio), 0.0), axis=1)
        scores[i] = np.exp(kl.mean())
    return float(scores.mean()), float(scores.std())


def softmax(logits):
    """Row-wise softmax of ``(N, K)`` logits in float64 (max-shifted, so large logits do not overflow)."""
    logits = _as_matrix(logits, "logits")
    shifted = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(shifted)
    return p / p.sum(axis=1, keepdims=True)


def inception_score(logits, splits=10):
    """Inception Score of ``(N, K)`` Inception logits: :func:`classifier_score` of their softmax.

    Returns:
        ``(mean, std)`` over ``splits`` consecutive chunks, as Python floats.
    """
    return classifier_score(softmax(logits), splits=splits)


def _row_blocks(n_rows, n_cols, batch_size):
    step = int(batch_size) if batch_size else max(1, _BLOCK_ELEMENTS // max(n_cols, 1))
    for start in range(0, n_rows, step):
        yield start, min(start + step, n_rows)


def _sq_dists(a, b, a_sq, b_sq):
    """Squared Euclidean distances between rows, clipped at 0 against round-off."""
    d = a_sq[:, None] + b_sq[None, :] - 2.0 * (a @ b.T)
    return np.maximum(d, 0.0, out=d)


def _kth_radii_sq(feats, k, batch_size):
    """Squared distance from each row to its k-th nearest other row."""
    n = feats.shape[0]
    sq = np.einsum("ij,ij->i", feats, feats)
    radii = np.empty(n, dtype=np.float64)
    for start, stop in _row_blocks(n, n, batch_size):
        d = _sq_dists(feats[start:stop], feats, sq[start:stop], sq)
        # Exclude self explicitly: its computed distance may not be exactly 0.
        d[np.arange(stop - start), np.arange(start, stop)] = np.inf
        radii[start:stop] = np.partition(d, k - 1, axis=1)[:, k - 1]
    return radii


def _inside_any_ball(points, centres, radii_sq, batch_size):
    """Share of ``points`` inside at least one ball (``centres``, ``radii_sq``)."""
    p_sq = np.einsum("ij,ij->i", points, points)
    c_sq = np.einsum("ij,ij->i", centres, centres)
    inside = 0
    for start, stop in _row_blocks(points.shape[0], centres.shape[0], batch_size):
        d = _sq_dists(points[start:stop], centres, p_sq[start:stop], c_sq)
        inside += int(np.count_nonzero(np.any(d <= radii_sq[None, :], axis=1)))
    return inside / points.shape[0]


def precision_recall(real_feats, fake_feats, k=3, batch_size=None):
    """Improved precision and recall with k-NN manifolds (Kynkäänniemi et al., 2019).

    A set's manifold is the union of balls centred on its points, each reaching
    the point's k-th nearest neighbour in the same set (self excluded). A point
    on a ball's boundary counts as inside. Squared distances are compared, which
    gives the same answer as distances.

    Pairwise distances are computed in row blocks (about 4 M entries, ~32 MB,
    each unless ``batch_size`` says otherwise), so 10,000 x 10,000 never builds
    the full matrix.

    Args:
        real_feats: ``(N, D)`` features of real samples, N > k.
        fake_feats: ``(M, D)`` features of generated samples, M > k.
        k: neighbour defining each ball's radius (3 in the paper).
        batch_size: rows per block; ``None`` picks it from the block budget.

    Returns:
        ``(precision, recall)`` as Python floats in ``[0, 1]``.
    """
    k = int(k)
    if k < 1:
        raise UserError(f"k must be >= 1; got {k}")
    if batch_size is not None and int(batch_size) < 1:
        raise UserError(f"batch_size must be >= 1 or None; got {batch_size}")
    real = _as_matrix(real_feats, "real_feats", min_rows=k + 1)
    fake = _as_matrix(fake_feats, "fake_feats", min_rows=k + 1)
    _same_width(real, fake, "real_feats", "fake_feats")
    real_radii = _kth_radii_sq(real, k, batch_size)
    fake_radii = _kth_radii_sq(fake, k, batch_size)
    precision = _inside_any_ball(fake, real, real_radii, batch_size)
    recall = _inside_any_ball(real, fake, fake_radii, batch_size)
    return float(precision), float(recall)


def class_coverage(pred_labels, num_classes=10):
    """How the predicted classes of generated samples spread over the classes.

    Args:
        pred_labels: ``(N,)`` integer class predictions in ``[0, num_classes)``.
        num_classes: number of classes K.

    Returns:
        A dict with ``histogram`` (list of K ints), ``classes_present`` (int,
        classes predicted at least once) and ``kl_to_uniform`` (float,
        ``sum_c p_c log(K p_c)`` in nats over classes with ``p_c > 0``: 0 when
        perfectly balanced, ``log K`` when everything is one class).
    """
    num_classes = int(num_classes)
    if num_classes < 1:
        raise UserError(f"num_classes must be >= 1; got {num_classes}")
    labels = np.asarray(pred_labels)
    if labels.ndim != 1 or labels.size == 0:
        raise UserError(f"pred_labels must be a non-empty 1-D array of class indices; got shape {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        if not (np.issubdtype(labels.dtype, np.floating) and np.all(np.isfinite(labels))
                and np.all(labels == np.round(labels))):
            raise UserError("pred_labels must hold integer class indices (use argmax of the probabilities)")
        labels = labels.astype(np.int64)
    if labels.min() < 0 or labels.max() >= num_classes:
        raise UserError(
            f"pred_labels must lie in [0, {num_classes}); got values from {labels.min()} to {labels.max()}")
    counts = np.bincount(labels, minlength=num_classes)
    p = counts / labels.size
    present = p > 0
    kl = float(np.sum(p[present] * np.log(p[present] * num_classes)))
    return {
        "histogram": [int(c) for c in counts],
        "classes_present": int(np.count_nonzero(present)),
        "kl_to_uniform": max(kl, 0.0),
    }
