"""DiffAugment (Zhao et al. 2020): random, differentiable augmentations applied to every image D sees.

The policies of the paper's reference implementation (mit-han-lab/data-efficient-gans):

* ``color``: brightness + U(-0.5, 0.5); saturation: deviation from the channel mean times
  U(0, 2) (a no-op on grayscale); contrast: deviation from the image mean times U(0.5, 1.5);
* ``translation``: shift by a whole number of pixels in [-S/8, S/8] (rounded) along each axis,
  zero padding;
* ``cutout``: zero a square of half the image side at a random centre (clipped at the border).

Policies run in that fixed order. The random numbers are not drawn here: each image gets
:data:`DRAWS` U(0, 1) numbers, drawn by the trainer in NumPy from its checkpointed generator
(so a resumed run repeats them), and the augmentation is a function of (images, numbers) that
runs inside the compiled step. Translation and cutout are products with 0/1 matrices and
masks, so the gradient w.r.t. the images is exact and flows back to G.
"""
import numpy as np

import mindspore as ms
from mindspore import ops

DRAWS = 7   # per image: brightness, saturation, contrast, shift rows, shift columns, cutout row, cutout column


def _per_image(u):
    return ops.reshape(u, (-1, 1, 1, 1))


def color(x, u):
    """Brightness, saturation, contrast with factors from u[:, 0:3]."""
    x = x + (_per_image(u[:, 0]) - 0.5)
    mean = ops.mean(x, 1, keep_dims=True)
    x = (x - mean) * (_per_image(u[:, 1]) * 2.0) + mean
    mean = ops.mean(x, (1, 2, 3), keep_dims=True)
    return (x - mean) * (_per_image(u[:, 2]) + 0.5) + mean


def _whole(u, count):
    """U[0, 1) -> a whole number in [0, count) as float32 (min(): float rounding never gives ``count``)."""
    return ops.minimum(ops.floor(u * float(count)), float(count - 1))


class DiffAugment:
    """The policies (a canonical string, :func:`ms_gan.train.objective.parse_policies`) for S x S images.

    Call with images (B, C, S, S) and draws (B, DRAWS) in [0, 1). The pixel indices are constant
    tensors made here: ``ops.arange`` inside a graph that also holds a gradient penalty's second
    derivative fails to compile in MindSpore 2.10 ("The pointer[real_primal_func] is null").
    """

    def __init__(self, policies, size):
        self.policies = tuple(p for p in policies.split(",") if p)
        self.size = int(size)
        index = np.arange(self.size, dtype=np.float32)
        self.rows_index = ms.Tensor(index.reshape(1, -1, 1))
        self.cols_index = ms.Tensor(index.reshape(1, 1, -1))
        self.index = ms.Tensor(index.reshape(1, -1))

    def _shift_matrices(self, shift):
        """(B, S, S) with [b, i, k] = 1 where k = i + shift[b]: rows of the shifted image, zeros past the border."""
        return ops.cast(ops.equal(self.cols_index, self.rows_index + ops.reshape(shift, (-1, 1, 1))), ms.float32)

    def translation(self, x, u):
        """out[b, c, i, j] = x[b, c, i + t0_b, j + t1_b] (0 outside), whole shifts in [-S/8, S/8] from u[:, 0:2]."""
        b, c, n = x.shape[0], x.shape[1], self.size
        s = int(n * 0.125 + 0.5)
        rows = self._shift_matrices(_whole(u[:, 0], 2 * s + 1) - s)   # (B, S, S)
        cols = self._shift_matrices(_whole(u[:, 1], 2 * s + 1) - s)
        rows = ops.broadcast_to(ops.expand_dims(rows, 1), (b, c, n, n))
        cols = ops.broadcast_to(ops.expand_dims(cols, 1), (b, c, n, n))
        return ops.BatchMatMul(transpose_b=True)(ops.BatchMatMul()(rows, x), cols)

    def _covered(self, centre, size):
        """(B, S) 1.0 where the index lies in [centre - size // 2, centre - size // 2 + size)."""
        start = ops.reshape(centre, (-1, 1)) - float(size // 2)
        return ops.cast(ops.logical_and(self.index >= start, self.index < start + float(size)), ms.float32)

    def cutout(self, x, u):
        """Zero an (S/2 x S/2) square whose centre comes from u[:, 0:2], drawn as the reference draws it."""
        n = self.size
        s = int(n * 0.5 + 0.5)
        in_rows = self._covered(_whole(u[:, 0], n + (1 - s % 2)), s)   # (B, S)
        in_cols = self._covered(_whole(u[:, 1], n + (1 - s % 2)), s)
        mask = 1.0 - ops.expand_dims(in_rows, 2) * ops.expand_dims(in_cols, 1)
        return x * ops.expand_dims(mask, 1)

    def __call__(self, x, u):
        if "color" in self.policies:
            x = color(x, u[:, 0:3])
        if "translation" in self.policies:
            x = self.translation(x, u[:, 3:5])
        if "cutout" in self.policies:
            x = self.cutout(x, u[:, 5:7])
        return x
