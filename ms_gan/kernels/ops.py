"""The kernels' AOT custom operators and the Cell that runs a layer's convolution through them.

A Conv2d is the convolution src (N, C, H, W) * weights (O, C, KH, KW) -> dst; a Conv2dTranspose with
weights (Cin, Cout, KH, KW) is the backward-data pass of the convolution whose weights are those
(O = Cin, C = Cout), so each layer kind needs the three passes in a different order:

=====================  ====================  ====================================================
layer                  forward               backward (dx, dw)
=====================  ====================  ====================================================
Conv2d                 conv forward          backward-data(dy, w), backward-weights(x, dy)
Conv2dTranspose        backward-data(x, w)   conv forward(dy, w), backward-weights(dy, x)
=====================  ====================  ====================================================
"""
import numpy as np
from mindspore import Tensor, nn, ops
from mindspore import dtype as mstype

SAME = -1   # spec padding value: the kernels compute TensorFlow's SAME padding from the shapes


def _pads(layer):
    """(top, bottom, left, right) of a blocks conv layer, or (SAME,) * 4."""
    if layer.pad_mode == "same":
        return (SAME,) * 4
    if layer.pad_mode == "valid":
        return (0, 0, 0, 0)
    if isinstance(layer, nn.Conv2dTranspose):
        return (layer.padding_top, layer.padding_bottom, layer.padding_left, layer.padding_right)
    p = layer.padding
    return tuple(int(v) for v in p) if isinstance(p, (tuple, list)) else (int(p),) * 4


def supported(layer):
    """True for the layers the kernels compute: float32, one group, no dilation, and for transposed
    convolutions a kernel at least as large as the stride (MindSpore's output size differs below)."""
    if layer.group != 1 or tuple(layer.dilation)[-2:] != (1, 1) or layer.weight.dtype != mstype.float32:
        return False
    if getattr(layer, "data_format", "NCHW") != "NCHW":
        return False
    if isinstance(layer, nn.Conv2dTranspose):
        pad = layer.output_padding
        if any(pad) if isinstance(pad, tuple) else pad:
            return False
        return all(k >= s for k, s in zip(layer.kernel_size, layer.stride[-2:]))
    return True


def _same_out(length, stride):
    return -(-length // stride)


def _conv_out(length, kernel, stride, before, after):
    if before == SAME:
        return _same_out(length, stride)
    return (length + before + after - kernel) // stride + 1


def _deconv_out(length, kernel, stride, before, after):
    if before == SAME:
        return length * stride
    return (length - 1) * stride + kernel - before - after


def _custom(library, func, out_shape, geometry, bprop=None):
    kwargs = {"bprop": bprop} if bprop is not None else {}
    op = ops.Custom(f"{library}:{func}", out_shape=out_shape, out_dtype=mstype.float32, func_type="aot",
                    **kwargs)
    # MindSpore's graph compiler treats Custom ops with equal attributes as one operator (one output-shape
    # function for all: a k3 layer's output was inferred with a k4 layer's function); this attribute keeps
    # each geometry and role apart.
    op.add_prim_attr("ms_gan_geometry", f"{func}:{out_shape.__name__}:{geometry}")
    return op


class ConvKernel(nn.Cell):
    """``construct(x, weight)``: the layer's convolution or transposed convolution (no bias) on the
    kernels, with its gradients (input and weight) on the kernels too."""

    def __init__(self, library, layer):
        super().__init__()
        kh, kw = layer.kernel_size
        sh, sw = layer.stride[-2:]
        top, bottom, left, right = _pads(layer)
        self.spec = Tensor(np.array([sh, sw, top, bottom, left, right], np.int64))
        self.transposed = isinstance(layer, nn.Conv2dTranspose)

        def like(_a, _b, _spec, ref):   # backward passes: the gradient has the shape of a forward input
            return ref

        def conv_shape(x, w, _spec):
            return [x[0], w[0], _conv_out(x[2], kh, sh, top, bottom), _conv_out(x[3], kw, sw, left, right)]

        def deconv_shape(x, w, _spec):
            return [x[0], w[1], _deconv_out(x[2], kh, sh, top, bottom), _deconv_out(x[3], kw, sw, left, right)]

        geometry = f"k{kh}x{kw}:s{sh}x{sw}:p{top},{bottom},{left},{right}"
        forward = _custom(library, "MsGanConvForward", conv_shape, geometry)
        backward_data = _custom(library, "MsGanConvBackwardData", like, geometry)
        backward_weights = _custom(library, "MsGanConvBackwardWeights", like, geometry)

        if self.transposed:
            def bprop(x, weight, spec, out, dout):
                dx = forward(dout, weight, spec)
                dw = backward_weights(dout, x, spec, weight)
                return dx, dw, ops.zeros_like(spec)

            self.op = _custom(library, "MsGanConvBackwardData", deconv_shape, geometry, bprop)
        else:
            def bprop(x, weight, spec, out, dout):
                dx = backward_data(dout, weight, spec, x)
                dw = backward_weights(x, dout, spec, weight)
                return dx, dw, ops.zeros_like(spec)

            self.op = _custom(library, "MsGanConvForward", conv_shape, geometry, bprop)

    def construct(self, x, weight):
        return self.op(x, weight, self.spec)


class Nearest2xKernel(nn.Cell):
    """``construct(x)``: nearest-neighbour 2x upsampling of (N, C, H, W) float32 ``x``, gradient on the kernels
    too (``nearest.cc``: each 2x2 block summed in MindSpore's order, so both passes equal its own ops')."""

    def __init__(self, library):
        super().__init__()

        def doubled(x):
            return [x[0], x[1], 2 * x[2], 2 * x[3]]

        def like(_dy, ref):
            return ref

        grad = _custom(library, "MsGanNearest2xGrad", like, "nearest2x")

        def bprop(x, out, dout):
            return (grad(dout, x),)

        self.op = _custom(library, "MsGanNearest2x", doubled, "nearest2x", bprop)

    def construct(self, x):
        return self.op(x)
