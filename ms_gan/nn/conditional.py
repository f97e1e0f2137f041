"""Layers of the class-conditional networks (``train --conditional``).

* :class:`ConditionalBatchNorm2d` (G with BatchNorm): BatchNorm without its own affine, then a
  per-class scale and shift looked up from two (classes, channels) tables, as in SAGAN/BigGAN.
  The class then modulates every normalised layer, not only the input.
* :class:`ClassEmbedding` (G without BatchNorm, ``dcgan_digits8``): a learned (classes, dim)
  table whose row is concatenated to z; with no normalisation layer to modulate, the input is
  the one place the class can enter without adding layers to the article's G.
* :class:`Projection` (every conditional D, Miyato & Koyama 2018): the inner product
  ``<embed(y), phi(x)>`` added to D's logit ``psi(phi(x))``, ``phi`` the features D's last
  linear layer reads, flattened. Where that layer is a convolution to 1x1 whose kernel covers
  the whole map (dcgan_digits8: k3 on 3x3, dcgan64: k4 on 4x4), it is a Dense on the flattened
  map, so the projection takes the same flattened vector: both heads see the same features
  (a sum over positions would throw away the position information the last conv uses).

Class labels are int32 (N,). Tables are drawn by :func:`initialize_conditional` from the
network's seeded generator after every other layer, so unconditional networks draw exactly
what they drew before.
"""
import numpy as np

import mindspore as ms
from mindspore import Parameter, nn, ops


class ConditionalBatchNorm2d(nn.Cell):
    """BatchNorm2d (no affine) followed by ``gamma[y] * x + beta[y]`` per channel."""

    def __init__(self, num_features, num_classes, momentum=0.9, eps=1e-5):
        super().__init__()
        self.norm = nn.BatchNorm2d(num_features, eps=eps, momentum=momentum, affine=False)
        self.class_scale = Parameter(ms.Tensor(np.ones((num_classes, num_features), np.float32)), name="class_scale")
        self.class_shift = Parameter(ms.Tensor(np.zeros((num_classes, num_features), np.float32)), name="class_shift")

    def construct(self, x, y):
        gamma = ops.gather(self.class_scale, y, 0)
        beta = ops.gather(self.class_shift, y, 0)
        n, c = gamma.shape
        return self.norm(x) * ops.reshape(gamma, (n, c, 1, 1)) + ops.reshape(beta, (n, c, 1, 1))


class ClassEmbedding(nn.Cell):
    """y (N,) -> (N, dim): one learned row per class."""

    def __init__(self, num_classes, dim):
        super().__init__()
        self.table = Parameter(ms.Tensor(np.zeros((num_classes, dim), np.float32)), name="table")

    def construct(self, y):
        return ops.gather(self.table, y, 0)


class Projection(nn.Cell):
    """(features (N, F), y (N,)) -> (N, 1): ``sum_f embed[y, f] * features[:, f]``."""

    def __init__(self, num_classes, features):
        super().__init__()
        self.table = Parameter(ms.Tensor(np.zeros((num_classes, features), np.float32)), name="table")

    def construct(self, features, y):
        return ops.sum(ops.gather(self.table, y, 0) * features, 1, keepdim=True)


def with_projection(logit, projection, features, y):
    """D's logit plus the class projection of its flattened last features (N, 1)."""
    return logit + projection(ops.reshape(features, (features.shape[0], -1)), y)


def initialize_conditional(net, scheme, rng):
    """Draw the class tables of ``net`` from ``rng`` (after :func:`ms_gan.nn.init.initialize`).

    Embeddings concatenated to z: N(0, 1) (PyTorch's nn.Embedding). Projections: U(+-1/sqrt(F)),
    the default of a Linear(F -> 1) (F = features), so at the start the projection is of the
    size of the logit it is added to. Conditional BN: the inner BN keeps no affine (gamma 1,
    beta 0, whatever the scheme drew); class gammas are 1 (N(1, 0.02) under ``dcgan_normal``,
    as that scheme draws BN gammas), class betas 0.
    """
    def put(param, array):
        param.set_data(ms.Tensor(np.asarray(array, dtype=np.float32)))

    for _, cell in net.cells_and_names():
        if isinstance(cell, Projection):
            shape = cell.table.shape
            bound = 1.0 / np.sqrt(shape[1])
            put(cell.table, rng.uniform(-bound, bound, shape))
        elif isinstance(cell, ClassEmbedding):
            put(cell.table, rng.normal(0.0, 1.0, cell.table.shape))
        elif isinstance(cell, ConditionalBatchNorm2d):
            put(cell.norm.gamma, np.ones(cell.norm.gamma.shape))
            put(cell.norm.beta, np.zeros(cell.norm.beta.shape))
            shape = cell.class_scale.shape
            gamma = rng.normal(1.0, 0.02, shape) if scheme == "dcgan_normal" else np.ones(shape)
            put(cell.class_scale, gamma)
            put(cell.class_shift, np.zeros(shape))


def is_conditional(net):
    """True when ``net`` takes class labels (it has any layer of this module)."""
    return any(isinstance(c, (ConditionalBatchNorm2d, ClassEmbedding, Projection)) for _, c in net.cells_and_names())


def norm2d(num_features, num_classes=0, momentum=0.9, eps=1e-5):
    """G's BatchNorm2d: the plain one (``num_classes`` 0) or :class:`ConditionalBatchNorm2d`."""
    from ms_gan.nn.blocks import batch_norm

    if num_classes:
        return ConditionalBatchNorm2d(num_features, num_classes, momentum=momentum, eps=eps)
    return batch_norm(num_features, momentum=momentum, eps=eps)


def normalize(norm, x, y):
    """``norm(x)``, or ``norm(x, y)`` for a conditional network (labels given)."""
    if y is None:
        return norm(x)
    return norm(x, y)


class ClassInputOutput(nn.Cell):
    """Export wrapper of a conditional network: ``(x, y) -> primary output`` (attention maps dropped)."""

    def __init__(self, net):
        super().__init__()
        self.net = net
        self.has_attention = bool(getattr(net, "has_attention", False))

    def construct(self, x, y):
        out = self.net(x, y)
        if self.has_attention:
            return out[0]
        return out
