"""Layers the networks are built from, configured the way the recipes state them.

Padding is given as the recipes write it and translated here once: an int (symmetric,
PyTorch style), a 4-tuple (top, bottom, left, right), or ``"same"`` (TensorFlow/Keras
SAME, which pads the extra row/column at the end).

BatchNorm momentum convention: MindSpore updates
``moving = momentum * moving + (1 - momentum) * batch``, like Keras; PyTorch's momentum
is the weight of the *batch* term. So Keras ``momentum=0.8`` is MindSpore 0.8, and
PyTorch's default 0.1 is MindSpore 0.9.

Convolutions and the 1-D BatchNorm are built from :mod:`ms_gan.nn.workarounds` classes, which
compute the same thing faster on MindSpore's CPU backend; the networks take the activations that
need a workaround (LeakyReLU, Tanh) from there directly.
"""
from mindspore import nn

from ms_gan import kernels
from ms_gan.nn.workarounds import BatchNorm1d, Conv2d, Conv2dTranspose, LeakyReLU, Tanh, Upsample2x

__all__ = ["conv", "conv_t", "batch_norm", "upsample2x", "Dense"]


class Dense(nn.Dense):
    """``nn.Dense`` (same parameters, names and math) whose matrix product, bias and activation run as one
    :mod:`ms_gan.kernels` operator in training mode on CPU (``custom_dense``; None: MindSpore's MatMul,
    BiasAdd and the activation Cell). ``activation``: None, ``nn.ReLU()``, a workarounds ``LeakyReLU`` or
    ``Tanh`` on the kernels; any other Cell keeps MindSpore's ops. Fewer, faster kernels for the MLP preset
    (bench/NOTES.md, session 5)."""

    def __init__(self, in_channels, out_channels, activation=None):
        super().__init__(in_channels, out_channels, activation=activation)
        code = _kernel_activation(activation)
        self.custom_dense = None if code is None else kernels.for_dense(self, *code)

    def construct(self, x):
        if self.training and self.custom_dense is not None and x.ndim == 2:
            return self.custom_dense(x, self.weight, self.bias)
        return super().construct(x)


def _kernel_activation(activation):
    """(code, slope) of ``activation`` for the kernels' Dense op, or None if they lack it."""
    if activation is None:
        return 0, 0.0
    if isinstance(activation, nn.ReLU):
        return 1, 0.0
    if isinstance(activation, LeakyReLU) and activation.slope > 0.0:
        return 1, float(activation.slope)
    if isinstance(activation, Tanh):
        return 2, 0.0
    return None


def _pad_args(padding):
    if padding == "same":
        return {"pad_mode": "same"}
    if isinstance(padding, (tuple, list)):
        return {"pad_mode": "pad", "padding": tuple(int(p) for p in padding)}
    if padding:
        return {"pad_mode": "pad", "padding": int(padding)}
    return {"pad_mode": "valid"}


def conv(in_ch, out_ch, kernel, stride=1, padding=0, bias=True):
    """Conv2d with PyTorch-style defaults (bias on) and recipe-style padding."""
    return Conv2d(in_ch, out_ch, kernel, stride=stride, has_bias=bias, **_pad_args(padding))


def conv_t(in_ch, out_ch, kernel, stride=1, padding=0, bias=True):
    """Conv2dTranspose; ``padding`` crops the full output like PyTorch's padding.

    A 4-tuple crops asymmetrically, e.g. (1, 2, 1, 2) turns a k4 s2 4x4->10x10 full
    transposed convolution into TensorFlow's SAME output of 7x7.
    """
    return Conv2dTranspose(in_ch, out_ch, kernel, stride=stride, has_bias=bias, **_pad_args(padding))


def batch_norm(num_features, momentum=0.9, eps=1e-5, dims=2):
    """BatchNorm in MindSpore's momentum convention (see the module docstring)."""
    cls = nn.BatchNorm2d if dims == 2 else BatchNorm1d
    return cls(num_features, eps=eps, momentum=momentum)


def upsample2x():
    """Nearest-neighbour 2x upsampling (Keras UpSampling2D; see :class:`~ms_gan.nn.workarounds.Upsample2x`)."""
    return Upsample2x()
