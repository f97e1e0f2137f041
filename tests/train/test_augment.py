"""DiffAugment: each policy's effect, gradients through it, determinism, off by default."""
import numpy as np
import pytest

import mindspore as ms
from mindspore import ops

from ms_gan import presets
from ms_gan.train.augment import DRAWS, DiffAugment
from ms_gan.train.objective import parse_policies

N, SIZE = 64, 16


def _images(seed=0, channels=3):
    return np.random.default_rng(seed).uniform(-1, 1, (N, channels, SIZE, SIZE)).astype(np.float32)


def _draws(seed=1):
    return np.random.default_rng(seed).random((N, DRAWS), dtype=np.float32)


def _augment(policy, x, u):
    return DiffAugment(policy, SIZE)(ms.Tensor(x), ms.Tensor(u)).asnumpy()


def test_color_brightness_saturation_contrast_statistics():
    x, u = _images(), _draws()
    y = _augment("color", x, u).astype(np.float64)
    b, s, c = u[:, 0] - 0.5, u[:, 1] * 2.0, u[:, 2] + 0.5
    ref = x.astype(np.float64) + b[:, None, None, None]
    m = ref.mean(1, keepdims=True)
    ref = (ref - m) * s[:, None, None, None] + m
    m = ref.mean((1, 2, 3), keepdims=True)
    ref = (ref - m) * c[:, None, None, None] + m
    np.testing.assert_allclose(y, ref, atol=1e-5)
    # statistics: the image mean moves by the brightness offset only; the spread scales with contrast
    np.testing.assert_allclose(y.mean((1, 2, 3)) - x.mean((1, 2, 3)), b, atol=1e-5)
    assert -0.5 <= b.min() and b.max() < 0.5 and np.ptp(b) > 0.8
    gray = _images(channels=1)
    np.testing.assert_allclose(_augment("color", gray, u).std((1, 2, 3)), gray.std((1, 2, 3)) * c, rtol=1e-4)


def test_translation_shifts_by_whole_pixels_with_zero_padding():
    x, u = _images(), _draws()
    y = _augment("translation", x, u)
    shift = int(SIZE * 0.125 + 0.5)   # 2 pixels for 16x16
    seen = set()
    for i in range(N):
        ty = int(np.floor(u[i, 3] * (2 * shift + 1))) - shift
        tx = int(np.floor(u[i, 4] * (2 * shift + 1))) - shift
        seen.add((ty, tx))
        ref = np.zeros_like(x[i])
        pad = np.pad(x[i], ((0, 0), (shift, shift), (shift, shift)))
        ref[:] = pad[:, shift + ty: shift + ty + SIZE, shift + tx: shift + tx + SIZE]
        np.testing.assert_array_equal(y[i], ref)
    assert len(seen) > 15   # of the 25 possible shifts


def test_cutout_zeroes_one_half_size_square_per_image():
    x = _images() + 3.0   # no pixel is 0 before
    u = _draws()
    y = _augment("cutout", x, u)
    zero = np.all(y == 0.0, axis=1)
    for i in range(N):
        rows, cols = np.nonzero(zero[i].any(1))[0], np.nonzero(zero[i].any(0))[0]
        # one contiguous square of side S/2 = 8, clipped at the border
        assert 0 < len(rows) <= SIZE // 2 and 0 < len(cols) <= SIZE // 2
        assert zero[i].sum() == len(rows) * len(cols)
        assert rows[-1] - rows[0] + 1 == len(rows) and cols[-1] - cols[0] + 1 == len(cols)
        np.testing.assert_array_equal(y[i][:, ~zero[i]], x[i][:, ~zero[i]])
    assert np.mean(zero.sum((1, 2))) > 0.6 * (SIZE // 2) ** 2


@pytest.mark.parametrize("use_jit", [False, True])
def test_gradients_flow_through_every_policy(use_jit):
    aug = DiffAugment("color,translation,cutout", SIZE)
    w = ms.Tensor(np.random.default_rng(2).standard_normal((N, 3, SIZE, SIZE)).astype(np.float32))
    u = ms.Tensor(_draws())

    def f(x):
        return ops.sum(aug(x, u) * w)

    grad = ms.grad(f)
    g = (ms.jit(grad) if use_jit else grad)(ms.Tensor(_images())).asnumpy()
    assert np.isfinite(g).all() and np.count_nonzero(g) > 0.3 * g.size
    # the augmentation is linear in x up to the color offsets: check the gradient by a finite difference
    x = _images()
    d = np.random.default_rng(3).standard_normal(x.shape).astype(np.float32) * 1e-2
    lhs = float(f(ms.Tensor(x + d)).asnumpy()) - float(f(ms.Tensor(x)).asnumpy())
    assert lhs == pytest.approx(float(np.sum(g * d)), rel=2e-3)


def test_same_draws_same_augmentation():
    x, u = _images(), _draws()
    policy = "color,translation,cutout"
    np.testing.assert_array_equal(_augment(policy, x, u), _augment(policy, x, u))
    assert not np.array_equal(_augment(policy, x, u), _augment(policy, x, _draws(seed=9)))


def test_off_by_default_and_canonical_order():
    assert all(p.diffaugment == "" for p in presets.PRESETS.values())
    assert parse_policies("cutout, color") == "color,cutout"
    assert presets.override(presets.get("dcgan64"), diffaugment="translation,color").diffaugment == "color,translation"
