"""Weight initialisation schemes, drawn with NumPy from one seeded generator.

Drawing every initial weight from ``numpy.random.Generator`` (instead of MindSpore's
initialisers) makes initial weights a pure function of the seed: identical in graph
and PyNative mode, on every rank of a distributed run, and reproducible in the
PyTorch reference models. Each scheme reproduces one framework's recipe:

* ``torch_default``: PyTorch's default for Conv/ConvTranspose/Linear (kaiming-uniform
  with a=sqrt(5): U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias, with
  fan_in = weight.shape[1] * kernel area, PyTorch's rule also for transposed convs).
  MindSpore 2.x's own defaults follow the same rule; seeds 000 and 003 use it.
* ``dcgan_normal``: weights N(0, 0.02), biases 0, BatchNorm gamma N(1, 0.02), beta 0
  (seed 004's ``weights_init``).
* ``tf_normal``: every weight and bias N(0, 0.02), BatchNorm gamma 1, beta 0 (seed 002).
* ``keras_default``: glorot-uniform weights, zero biases, gamma 1, beta 0 (seed 001).
"""
import numpy as np
from mindspore import nn

SCHEMES = ("torch_default", "dcgan_normal", "tf_normal", "keras_default")

_WEIGHTED = (nn.Conv2d, nn.Conv2dTranspose, nn.Dense)
_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d)


def _fans(shape):
    receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return shape[1] * receptive, shape[0] * receptive


def _set(param, array):
    import mindspore as ms

    param.set_data(ms.Tensor(np.asarray(array, dtype=np.float32).reshape(param.shape)))


def initialize(cell, scheme, rng):
    """Re-initialise every Conv/ConvT/Dense/BatchNorm inside ``cell`` in place.

    Args:
        cell: a network.
        scheme: one of :data:`SCHEMES`.
        rng: ``numpy.random.Generator``; layers are visited in ``cells_and_names`` order.
    """
    if scheme not in SCHEMES:
        raise ValueError(f"unknown init scheme {scheme!r}")
    for _, sub in cell.cells_and_names():
        if isinstance(sub, _WEIGHTED):
            shape = tuple(sub.weight.shape)
            fan_in, fan_out = _fans(shape)
            bias = getattr(sub, "bias", None) if getattr(sub, "has_bias", True) else None
            if scheme == "torch_default":
                bound = 1.0 / np.sqrt(fan_in)
                _set(sub.weight, rng.uniform(-bound, bound, shape))
                if bias is not None:
                    _set(bias, rng.uniform(-bound, bound, bias.shape))
            elif scheme == "dcgan_normal":
                _set(sub.weight, rng.normal(0.0, 0.02, shape))
                if bias is not None:
                    _set(bias, np.zeros(bias.shape))
            elif scheme == "tf_normal":
                _set(sub.weight, rng.normal(0.0, 0.02, shape))
                if bias is not None:
                    _set(bias, rng.normal(0.0, 0.02, bias.shape))
            else:  # keras_default
                limit = np.sqrt(6.0 / (fan_in + fan_out))
                _set(sub.weight, rng.uniform(-limit, limit, shape))
                if bias is not None:
                    _set(bias, np.zeros(bias.shape))
        elif hasattr(sub, "weight_u") and hasattr(sub, "weight_v"):
            # Spectral norm's power-iteration vectors: normal then normalised (torch's
            # recipe), drawn here so they too depend only on the seed.
            for vec in (sub.weight_u, sub.weight_v):
                draw = rng.normal(0.0, 1.0, vec.shape)
                _set(vec, draw / max(np.linalg.norm(draw), 1e-12))
        elif isinstance(sub, _NORMS) and scheme == "dcgan_normal":
            _set(sub.gamma, rng.normal(1.0, 0.02, sub.gamma.shape))
            _set(sub.beta, np.zeros(sub.beta.shape))
