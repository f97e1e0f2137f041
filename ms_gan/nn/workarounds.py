"""MindSpore-specific replacements: each one computes what a stock MindSpore 2.10 op computes
(or what PyTorch computes), and exists because of a fault measured on the CPU backend.

============================  ============================================================
replacement                   why (measurement; bench/NOTES.md has the runs)
============================  ============================================================
:func:`divide`                ``/`` (Div) keeps four output-sized buffers per graph node:
                              34 MB for one division of an 8 MB tensor (attempt 14)
:class:`LeakyReLU`            ``nn.LeakyReLU``'s Maximum gradient keeps ~6 input-sized
                              buffers per node and is ~4x slower (attempt 15)
:class:`Tanh`                 the CPU tanh errs by up to 1e-4 for |x| in 3..5 and returns
                              1.0000098 at x = 5 (parity tests)
:class:`BatchNorm1d`          (N, C) batch norm runs as a 4-D oneDNN kernel: ~1.9 ms for
                              (64, 1024) against ~0.1 ms with reductions
:class:`Conv2d`,              a convolution that is a plain matrix product as one MatMul:
:class:`Conv2dTranspose`      DCGAN-64 D's 4x4 head forward+backward ~60 ms -> ~2 ms
:class:`Upsample2x`           ResizeNearestNeighborV2 and its gradient took 0.45 s and 1.4 s
                              per call on dcgan128_rgb's maps: in training mode through
                              :mod:`ms_gan.kernels` when those are on (attempt 62)
:func:`compiled_in_pynative`  PyNative differentiates a gradient wrongly: a backward that
                              returns a view (Reshape, Transpose, ...) is a constant to the
                              outer derivative; Softmax's fails (docs/mindspore_double_grad.md)
============================  ============================================================

:func:`conv2d_with` and :func:`conv_transpose_with` run a layer's oneDNN convolution with
another weight (spectral norm uses them); in training mode through :mod:`ms_gan.kernels` (blocked
layouts) when those are on.
"""
import os

import numpy as np
import mindspore as ms
from mindspore import nn, ops

from ms_gan import kernels

# "auto": layers whose convolution is a plain matrix product (see Conv2d / Conv2dTranspose
# below) run as MatMul; "onednn": every layer through MindSpore's oneDNN convolution
# (for profiling and A/B measurements; bench/NOTES.md).
CONV_IMPL = os.environ.get("MS_GAN_CONV_IMPL", "auto")


# MindSpore 2.10's CPU Div kernel (the ``/`` operator, ``ops.div``) keeps four output-sized
# buffers per graph node for as long as the compiled graph lives: 34 MB for one division of an
# 8 MB tensor, forward or backward (bench/NOTES.md, attempt 14). RealDiv computes the same IEEE
# quotient (bit-identical) without them, so every tensor division of the package goes through it.
_REAL_DIV = ops.RealDiv()


def divide(x, y):
    """x / y elementwise (broadcasting), without the Div kernel's memory cost."""
    return _REAL_DIV(x, y)


def _plain(cell):
    return CONV_IMPL != "onednn" and cell.pad_mode == "valid" and cell.group == 1 \
        and tuple(cell.dilation) in ((1, 1), (1, 1, 1, 1))


class Conv2d(nn.Conv2d):
    """nn.Conv2d that computes a valid convolution whose kernel covers the whole input
    (a 1x1 output, e.g. DCGAN D's 4x4 head) as one MatMul.

    Same sum of products as the convolution; MindSpore 2.10's oneDNN path takes ~60 ms
    for the forward+backward of DCGAN-64's head at batch 64, MatMul ~2 ms (bench/NOTES.md).
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.custom_conv = kernels.for_layer(self)   # None: MindSpore's own Conv2D
        self.kernels_in_eval = False                 # kernels.use_in_eval: the kernels in eval mode too

    def construct(self, x):
        return self.conv_with(x, self.weight)

    def conv_with(self, x, weight):
        """The layer's convolution (and bias) with ``weight`` in place of its own (spectral norm)."""
        kh, kw = self.kernel_size
        if _plain(self) and x.shape[2] == kh and x.shape[3] == kw:
            y = ops.matmul(x.reshape(-1, self.in_channels * kh * kw), weight.reshape(self.out_channels, -1).T)
            if self.has_bias:
                y = y + self.bias
            return y.reshape(-1, self.out_channels, 1, 1)
        return conv2d_with(self, x, weight)


class Conv2dTranspose(nn.Conv2dTranspose):
    """nn.Conv2dTranspose that computes a valid transposed convolution of a 1x1 input
    (DCGAN G's stem from the latent vector) as one MatMul: out[n, o, i, j] = sum_c z[n, c] w[c, o, i, j].
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.custom_conv = kernels.for_layer(self)   # None: MindSpore's own Conv2DBackpropInput
        self.kernels_in_eval = False

    def construct(self, x):
        return self.conv_with(x, self.weight)

    def conv_with(self, x, weight):
        """The layer's transposed convolution (and bias) with ``weight`` in place of its own."""
        kh, kw = self.kernel_size
        if _plain(self) and x.shape[2] == 1 and x.shape[3] == 1:
            y = ops.matmul(x.reshape(-1, self.in_channels), weight.reshape(self.in_channels, -1))
            y = y.reshape(-1, self.out_channels, kh, kw)
            if self.has_bias:
                y = y + self.bias.reshape(1, -1, 1, 1)
            return y
        return conv_transpose_with(self, x, weight)


def _on_kernels(layer, custom):
    """Whether ``layer`` runs on its kernel op ``custom`` (:mod:`ms_gan.kernels`; None when they are off): in
    training mode, and in eval mode only where :func:`ms_gan.kernels.use_in_eval` asked for it (export,
    sampling and evaluation build their own networks and keep MindSpore's ops)."""
    return custom is not None and (layer.training or getattr(layer, "kernels_in_eval", False))


def conv2d_with(layer, x, weight):
    """``nn.Conv2d.construct`` of ``layer`` (oneDNN) with ``weight`` in place of its own."""
    if _on_kernels(layer, getattr(layer, "custom_conv", None)):
        y = layer.custom_conv(x, weight)
    else:
        y = layer.conv2d(x, weight)
    if layer.has_bias:
        y = layer.bias_add(y, layer.bias)
    return y


def _deconv_length(pad_mode, length, kernel, stride, dilation, padding):
    """Output length of a transposed conv, as ``nn.Conv2dTranspose.construct`` computes it."""
    kernel = kernel + (kernel - 1) * (dilation - 1)
    if pad_mode == "valid":
        return length * stride + max(kernel - stride, 0)
    if pad_mode == "same":
        return length * stride
    return length * stride - padding + kernel - stride


def conv_transpose_with(layer, x, weight):
    """``nn.Conv2dTranspose.construct`` of ``layer`` (oneDNN) with ``weight`` in place of its own."""
    n, _, h, w = ops.shape(x)
    h_out = _deconv_length(layer.pad_mode, h, layer.kernel_size[0], layer.stride[0], layer.dilation[0],
                           layer.padding_top + layer.padding_bottom)
    w_out = _deconv_length(layer.pad_mode, w, layer.kernel_size[1], layer.stride[1], layer.dilation[1],
                           layer.padding_left + layer.padding_right)
    if _on_kernels(layer, getattr(layer, "custom_conv", None)):
        out = layer.custom_conv(x, weight)
    else:
        out = layer.conv2d_transpose(x, weight, (n, layer.out_channels, h_out, w_out))
    if layer.has_bias:
        out = layer.bias_add(out, layer.bias)
    pad = layer.output_padding
    if isinstance(pad, tuple):
        if pad[0] > 0 or pad[1] > 0:
            out = ops.pad(out, (0, pad[1], 0, pad[0]))
    elif pad > 0:
        out = ops.pad(out, (0, pad, 0, pad))
    return out


class BatchNorm1d(nn.BatchNorm1d):
    """nn.BatchNorm1d computed with reductions over the batch axis instead of MindSpore's kernel.

    Same parameters, convention and results (batch statistics in training, the biased variance
    normalising and the unbiased one entering ``moving_variance``, as MindSpore and PyTorch do).
    Why: on CPU, MindSpore 2.10 runs (N, C) batch norm as an (N, C, 1, 1) oneDNN batch norm,
    ~1.9 ms forward for (64, 1024) where these ops take ~0.1 ms; the MLP GAN's G has three.
    """

    def construct(self, x):
        if not self.training:
            scale = divide(self.gamma, ops.sqrt(self.moving_variance + self.eps))   # no Rsqrt in the ONNX exporter
            return (x - self.moving_mean) * scale + self.beta
        n = x.shape[0]
        mean = ops.mean(x, 0)
        centred = x - mean
        var = ops.mean(centred * centred, 0)
        y = centred * divide(self.gamma, ops.sqrt(var + self.eps)) + self.beta
        keep = 1.0 - self.momentum   # self.momentum is the batch term's weight (MindSpore stores 1 - momentum)
        ops.assign(self.moving_mean, keep * self.moving_mean + self.momentum * ops.stop_gradient(mean))
        ops.assign(self.moving_variance,
                   keep * self.moving_variance + self.momentum * ops.stop_gradient(var) * (n / (n - 1.0)))
        return y


class Tanh(nn.Cell):
    """tanh that stays accurate, and inside [-1, 1], where images saturate.

    MindSpore 2.10's CPU tanh is off by up to 1e-4 for |x| in 3..5 and returns
    1.0000098 at x = 5 (measured by the parity tests). Above |x| = 2.5 this uses
    sign(x) * (1 - e) / (1 + e) with e = exp(-2|x|), exact to float32 rounding there.
    """

    def construct(self, x):
        e = ops.exp(-2.0 * ops.abs(x))
        tail = ops.sign(x) * divide(1.0 - e, 1.0 + e)
        return ops.select(ops.abs(x) < 2.5, ops.tanh(x), tail)


class Upsample2x(nn.Cell):
    """Nearest-neighbour 2x upsampling (Keras UpSampling2D): ``nn.Upsample(scale_factor=2, mode="nearest")``,
    in training mode on :mod:`ms_gan.kernels` when they are on.

    MindSpore 2.10's CPU ResizeNearestNeighborV2 took 0.45 s and its gradient 1.4 s per call on dcgan128_rgb's
    (32, 128, 64, 64) maps, 4.6 s of a 12.7 s iteration (bench/NOTES.md attempt 62); the kernels' copy and
    2x2 sums compute the same numbers (the sums in MindSpore's order). Eval mode (export swaps this cell for
    its own resize; sampling) keeps MindSpore's op unless :func:`ms_gan.kernels.use_in_eval` asked.
    """

    def __init__(self):
        super().__init__()
        self.resize = nn.Upsample(scale_factor=2.0, mode="nearest", recompute_scale_factor=True)
        self.custom_upsample = kernels.for_upsample()   # None: MindSpore's ResizeNearestNeighborV2
        self.kernels_in_eval = False

    def construct(self, x):
        if _on_kernels(self, self.custom_upsample):
            return self.custom_upsample(x)
        return self.resize(x)


class LeakyReLU(nn.Cell):
    """x where x > 0, else slope * x (0 <= slope <= 1): PyTorch's leaky_relu, forward and backward.

    Computed as ``x * s`` with ``s = [x > 0] * (1 - slope) + slope`` held out of the gradient, so
    the backward is the single product ``dout * s``. Exact: s is 1 or ``slope`` because
    fl(fl(1 - slope) + slope) = 1 for every float32 slope in [0, 1] (tested), so the output is x or
    ``x * slope`` and the gradient ``dout`` or ``dout * slope``, as torch computes them (x = 0
    included). Why not ``nn.LeakyReLU``: it is ``maximum(slope * x, x)``, and on CPU the gradient
    of Maximum in MindSpore 2.10 keeps ~6 input-sized buffers per graph node for the life of the
    compiled graph and takes ~4x as long (bench/NOTES.md, attempt 15). A hand-written ``bprop``
    costs the same in graph mode but halves PyNative's speed on the small presets.
    """

    def __init__(self, slope=0.2):
        super().__init__()
        if not 0.0 <= slope <= 1.0:
            raise ValueError(f"LeakyReLU slope must be in [0, 1], got {slope}")
        self.slope = float(np.float32(slope))
        self.rest = float(np.float32(1.0) - np.float32(slope))

    def construct(self, x):
        scale = ops.cast(x > 0, x.dtype) * self.rest + self.slope
        return x * ops.stop_gradient(scale)


def compiled_in_pynative(grad_fn):
    """``grad_fn`` (a first derivative that will be differentiated again) compiled by ``mindspore.jit``.

    For PyNative only (in graph mode the whole update is compiled already). MindSpore 2.10's PyNative
    autograd, differentiating a gradient, takes every input gradient that a backward function
    returns as a *view* (the backwards of Reshape, ExpandDims/Squeeze, Transpose, Tile and of the
    functional ``ops.matmul``) as a constant: the second derivative through it is 0.
    ``x -> (x W1 * 2).reshape(..) W2`` gives d/dW2 ||grad_x||^2 = 0. Every conv preset's D has
    such a Reshape in its head: the penalties' D gradients were wrong (dcgan_digits8 with GP: all
    288 entries of the last conv's weight gradient, up to 233x off). Softmax's second derivative
    fails outright ("The pointer[input_tensor] is null"; SAGAN's attention). The same first
    derivative compiled as one graph is differentiated by PyNative through the graph's own
    backward and matches torch.autograd.grad(create_graph=True) on every penalized preset
    (tests/train/test_penalties.py). Only this gradient is compiled; the rest of the update (the
    losses, the outer ``value_and_grad``, the optimizer) stays eager: MindSpore's mixed mode.
    Minimal repros and what else was tried: docs/mindspore_double_grad.md.
    """
    return ms.jit(grad_fn)
