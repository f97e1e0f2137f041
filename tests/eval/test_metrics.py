"""Tests for ms_gan.eval.metrics: closed forms, hand-made cases and sanity limits."""
import math

import numpy as np
import pytest

from ms_gan.errors import UserError
from ms_gan.eval import metrics as M


def _random_rotation(d, rng):
    q, r = np.linalg.qr(rng.standard_normal((d, d)))
    return q * np.sign(np.diag(r))


# --------------------------------------------------------------- Fréchet distance

def test_frechet_distance_diagonal_closed_form():
    rng = np.random.default_rng(0)
    mu1, mu2 = rng.standard_normal(6), rng.standard_normal(6)
    s1, s2 = rng.uniform(0.1, 3.0, 6), rng.uniform(0.1, 3.0, 6)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(s1) - np.sqrt(s2)) ** 2)
    got = M.frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2))
    assert isinstance(got, float)
    assert got == pytest.approx(expected, rel=1e-10)


def test_frechet_distance_commuting_full_covariances():
    # S1 = Q diag(a) Q^T and S2 = Q diag(b) Q^T commute, so
    # Tr sqrt(S1 S2) = sum sqrt(a b) is known independently of the implementation.
    rng = np.random.default_rng(1)
    q = _random_rotation(8, rng)
    a, b = rng.uniform(0.05, 4.0, 8), rng.uniform(0.05, 4.0, 8)
    s1, s2 = (q * a) @ q.T, (q * b) @ q.T
    assert np.abs(s1 - np.diag(np.diag(s1))).max() > 0.1  # really non-diagonal
    mu1, mu2 = rng.standard_normal(8), rng.standard_normal(8)
    expected = np.sum((mu1 - mu2) ** 2) + a.sum() + b.sum() - 2 * np.sqrt(a * b).sum()
    assert M.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-9)


def test_frechet_distance_non_commuting_2x2_identity():
    # For a 2x2 matrix with non-negative eigenvalues, Tr sqrt(X) = sqrt(Tr X + 2 sqrt(det X)).
    s1 = np.array([[2.0, 0.7], [0.7, 1.0]])
    s2 = np.array([[0.5, -0.3], [-0.3, 1.5]])
    prod = s1 @ s2
    assert not np.allclose(prod, s2 @ s1)
    tr_sqrt = math.sqrt(np.trace(prod) + 2 * math.sqrt(np.linalg.det(prod)))
    expected = 1.0 ** 2 + 2.0 ** 2 + np.trace(s1) + np.trace(s2) - 2 * tr_sqrt
    got = M.frechet_distance([0.0, 0.0], s1, [1.0, -2.0], s2)
    assert got == pytest.approx(expected, rel=1e-10)
    assert M.frechet_distance([1.0, -2.0], s2, [0.0, 0.0], s1) == pytest.approx(got, rel=1e-10)


def test_frechet_distance_rejects_mismatched_shapes():
    with pytest.raises(UserError):
        M.frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))
    with pytest.raises(UserError):
        M.frechet_distance(np.zeros(3), np.eye(3), np.zeros(3), np.full((3, 3), np.nan))


def test_feature_statistics():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((40, 5))
    mu, sigma = M.feature_statistics(x)
    np.testing.assert_allclose(mu, x.mean(axis=0))
    centred = x - x.mean(axis=0)
    np.testing.assert_allclose(sigma, centred.T @ centred / 39)
    mu1, sigma1 = M.feature_statistics(x[:, :1])  # one feature still gives (1,) and (1, 1)
    assert mu1.shape == (1,) and sigma1.shape == (1, 1)
    with pytest.raises(UserError):
        M.feature_statistics(x[:1])
    with pytest.raises(UserError):
        M.feature_statistics(x[0])


@pytest.mark.parametrize("n", [500, 30])  # 30 < 64 features: singular covariance
def test_frechet_feature_distance_of_a_set_with_itself_is_zero(n):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((n, 64)) @ rng.standard_normal((64, 64))
    scale = np.trace(np.cov(x, rowvar=False))
    assert M.frechet_feature_distance(x, x) < 1e-6 * scale


def test_frechet_feature_distance_grows_with_shift():
    rng = np.random.default_rng(4)
    a = rng.standard_normal((2000, 10))
    b = rng.standard_normal((2000, 10))
    near = M.frechet_feature_distance(a, b)
    far = M.frechet_feature_distance(a, b + 1.0)  # shift of squared norm 10
    assert near < 0.1
    assert far == pytest.approx(10.0, abs=0.5)
    with pytest.raises(UserError):
        M.frechet_feature_distance(a, b[:, :9])


# --------------------------------------------------------------------------- KID

def _mmd2_unbiased_loops(x, y):
    """Reference estimator written term by term."""
    d = x.shape[1]
    m = x.shape[0]

    def k(u, v):
        return (float(np.dot(u, v)) / d + 1.0) ** 3

    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    return xx + yy - 2 * xy


def test_kid_matches_term_by_term_estimator():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((25, 4))
    y = rng.standard_normal((25, 4)) + 0.3
    # subset_size >= N: each subset is a permutation of the whole set, and the
    # estimator does not depend on the order, so every subset gives the same value.
    mean, std = M.kid(x, y, num_subsets=3, subset_size=1000)
    assert mean == pytest.approx(_mmd2_unbiased_loops(x, y), rel=1e-10)
    assert std == pytest.approx(0.0, abs=1e-9)


def test_kid_same_distribution_is_near_zero_and_shift_is_large():
    rng = np.random.default_rng(6)
    a = rng.standard_normal((600, 16))
    b = rng.standard_normal((600, 16))
    mean, std = M.kid(a, b, num_subsets=50, subset_size=200, seed=1)
    assert std > 0
    assert abs(mean) < 2 * std
    shifted_mean, shifted_std = M.kid(a, b + 0.5, num_subsets=50, subset_size=200, seed=1)
    assert shifted_mean > 10 * shifted_std
    assert shifted_mean > 20 * abs(mean)


def test_kid_is_deterministic_per_seed_and_validates():
    rng = np.random.default_rng(7)
    a, b = rng.standard_normal((100, 3)), rng.standard_normal((80, 3))
    assert M.kid(a, b, 5, 50, seed=3) == M.kid(a, b, 5, 50, seed=3)
    assert M.kid(a, b, 5, 50, seed=3) != M.kid(a, b, 5, 50, seed=4)
    with pytest.raises(UserError):
        M.kid(a, b[:, :2])
    with pytest.raises(UserError):
        M.kid(a, b, subset_size=1)
    with pytest.raises(UserError):
        M.kid(a, b, num_subsets=0)


# ---------------------------------------------------------------- classifier score

@pytest.mark.parametrize("k", [10, 4])
def test_classifier_score_confident_and_balanced_is_k(k):
    probs = np.tile(np.eye(k), (10 * 5, 1))  # every split holds 5 full cycles of the classes
    mean, std = M.classifier_score(probs, splits=10)
    assert mean == pytest.approx(k, rel=1e-12)
    assert std == pytest.approx(0.0, abs=1e-12)


def test_classifier_score_identical_predictions_is_one():
    one_hot = np.zeros((100, 10))
    one_hot[:, 3] = 1.0
    assert M.classifier_score(one_hot, splits=10)[0] == pytest.approx(1.0)
    soft = np.tile(np.random.default_rng(8).dirichlet(np.ones(10)), (100, 1))
    assert M.classifier_score(soft, splits=5)[0] == pytest.approx(1.0)


def test_classifier_score_hand_computed():
    probs = np.array([[1.0, 0.0], [0.5, 0.5]])
    # p(y) = (0.75, 0.25)
    kl1 = math.log(1 / 0.75)
    kl2 = 0.5 * math.log(0.5 / 0.75) + 0.5 * math.log(0.5 / 0.25)
    mean, std = M.classifier_score(probs, splits=1)
    assert mean == pytest.approx(math.exp((kl1 + kl2) / 2), rel=1e-12)
    assert std == 0.0


def test_classifier_score_rejects_logits_and_bad_splits():
    logits = np.random.default_rng(9).standard_normal((20, 10))
    with pytest.raises(UserError, match="softmax"):
        M.classifier_score(logits)
    with pytest.raises(UserError):
        M.classifier_score(np.full((5, 2), 0.5), splits=6)


# --------------------------------------------------------------- precision/recall

def test_precision_recall_hand_made_1d():
    real = np.array([[0.0], [1.0], [2.0], [3.0]])  # k=1 radii: 1, 1, 1, 1
    fake = np.array([[0.5], [10.0]])               # k=1 radii: 9.5, 9.5
    precision, recall = M.precision_recall(real, fake, k=1)
    assert precision == 0.5  # 0.5 is inside a real ball, 10 is not
    assert recall == 1.0     # the ball around 0.5 (radius 9.5) covers every real
    # k=3 excludes self: the balls of the reals 0 and 3 have radius 3 (not 2), those
    # of 1 and 2 radius 2. -3 and 6 sit on a boundary (inside); -3.1 and 6.1 are out.
    precision3, _ = M.precision_recall(real, np.array([[-3.0], [-3.1], [6.0], [6.1]]), k=3)
    assert precision3 == 0.5


def test_precision_recall_identical_sets_are_one():
    x = np.random.default_rng(10).standard_normal((300, 8))
    assert M.precision_recall(x, x.copy(), k=3) == (1.0, 1.0)


def test_precision_recall_fall_with_shift_and_detect_mode_collapse():
    rng = np.random.default_rng(11)
    real = rng.standard_normal((400, 4))
    fake = rng.standard_normal((400, 4))
    p_same, r_same = M.precision_recall(real, fake, k=3)
    assert p_same > 0.6 and r_same > 0.6
    p_far, r_far = M.precision_recall(real, fake + 2.0, k=3)
    assert p_far < p_same - 0.3 and r_far < r_same - 0.3
    # Collapse: every fake near one real point -> high precision, tiny recall.
    collapsed = real[0] + 0.01 * rng.standard_normal((400, 4))
    p_col, r_col = M.precision_recall(real, collapsed, k=3)
    assert p_col == 1.0 and r_col < 0.05


def test_precision_recall_blocks_do_not_change_the_result():
    rng = np.random.default_rng(12)
    real, fake = rng.standard_normal((97, 5)), rng.standard_normal((83, 5)) + 0.4
    whole = M.precision_recall(real, fake, k=3, batch_size=10_000)
    assert M.precision_recall(real, fake, k=3, batch_size=7) == whole
    assert M.precision_recall(real, fake, k=3, batch_size=1) == whole


def test_precision_recall_validates():
    x = np.zeros((5, 2))
    with pytest.raises(UserError):
        M.precision_recall(x, np.zeros((5, 3)))
    with pytest.raises(UserError):
        M.precision_recall(x, x[:3], k=3)  # needs more than k samples
    with pytest.raises(UserError):
        M.precision_recall(x, x, k=0)


# ---------------------------------------------------------------- class coverage

def test_class_coverage_balanced():
    out = M.class_coverage(np.tile(np.arange(10), 7), num_classes=10)
    assert out == {"histogram": [7] * 10, "classes_present": 10, "kl_to_uniform": 0.0}


def test_class_coverage_missing_class_and_hand_kl():
    labels = np.array([0, 0, 1, 2])  # K = 4, class 3 missing: p = (1/2, 1/4, 1/4, 0)
    out = M.class_coverage(labels, num_classes=4)
    assert out["histogram"] == [2, 1, 1, 0]
    assert out["classes_present"] == 3
    expected = 0.5 * math.log(0.5 * 4) + 2 * 0.25 * math.log(0.25 * 4)  # = 0.5 log 2
    assert out["kl_to_uniform"] == pytest.approx(expected, rel=1e-12)
    assert out["kl_to_uniform"] == pytest.approx(0.5 * math.log(2), rel=1e-12)
    assert isinstance(out["kl_to_uniform"], float) and isinstance(out["classes_present"], int)


def test_class_coverage_single_class_is_log_k():
    out = M.class_coverage([7] * 12, num_classes=10)
    assert out["histogram"] == [0] * 7 + [12, 0, 0]
    assert out["classes_present"] == 1
    assert out["kl_to_uniform"] == pytest.approx(math.log(10), rel=1e-12)


def test_class_coverage_validates():
    assert M.class_coverage(np.array([0.0, 1.0]), num_classes=2)["histogram"] == [1, 1]
    with pytest.raises(UserError):
        M.class_coverage([0, 10], num_classes=10)
    with pytest.raises(UserError):
        M.class_coverage([-1, 2])
    with pytest.raises(UserError):
        M.class_coverage([0.5, 1.0])
    with pytest.raises(UserError):
        M.class_coverage([])
    with pytest.raises(UserError):
        M.class_coverage(np.zeros((2, 2), dtype=int))
