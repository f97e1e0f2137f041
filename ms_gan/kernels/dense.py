"""The kernels' Dense (+ activation) and BatchNorm1d operators: fewer, fused kernels for the MLP preset.

An mlp_mnist training iteration ran ~470 MindSpore kernels (bench/NOTES.md, session 5): per Dense layer
MatMul + BiasAdd + the activation (our exact LeakyReLU is 5 small kernels) forward and two MatMuls, a
BiasAddGrad and the activation's gradient backward; per BatchNorm1d ~15 reductions and elementwise ops
each way. Each launch costs tens of microseconds, and MindSpore's nnacl MatMul ran at 0.55-0.7x the speed of
PyTorch's sgemm on these shapes. Here (``onednn_matmul.cc``):

* Dense forward ``y = act(x @ w^T + b)``: one oneDNN matmul with bias and (leaky) ReLU as post-ops.
* Dense backward: ``dx = g @ w`` and ``(dw, db) = (g^T @ x, sum_n g)`` with ``g = dy * act'(y)``, two
  kernels (each prunable: MindSpore drops ``dx`` of a network's first layer and ``dw`` where no
  parameter gradient is asked for).
* BatchNorm1d (training mode): one kernel forward (output and both new moving statistics, then two
  assigns) and one backward (dx, dgamma, dbeta; the batch statistics recomputed from x).
"""
import numpy as np
from mindspore import Tensor, nn, ops
from mindspore import dtype as mstype

F32 = mstype.float32


def _custom(library, func, out_shape, out_dtype, tag, bprop=None):
    kwargs = {"bprop": bprop} if bprop is not None else {}
    op = ops.Custom(f"{library}:{func}", out_shape=out_shape, out_dtype=out_dtype, func_type="aot", **kwargs)
    # Custom ops with equal attributes are merged by MindSpore's graph compiler (ops.py): keep each apart.
    op.add_prim_attr("ms_gan_geometry", f"{func}:{tag}")
    return op


class DenseKernel(nn.Cell):
    """``construct(x, weight, bias)``: ``act(x @ weight^T + bias)`` for 2-d ``x``, gradients on the kernels.
    ``code``: 0 no activation, 1 (leaky) ReLU with ``slope`` (0 = ReLU), 2 tanh (accurate, libm)."""

    def __init__(self, library, code, slope):
        super().__init__()
        self.spec = Tensor(np.array([code, slope], np.float32))
        tag = f"act{code}:{slope!r}"
        backward_data = _custom(library, "MsGanDenseBackwardData", lambda dy, y, w, s: [dy[0], w[1]], F32, tag)
        backward_weights = _custom(library, "MsGanDenseBackwardWeights",
                                   lambda dy, y, x, s: ([dy[1], x[1]], [dy[1]]), (F32, F32), tag)

        def bprop(x, weight, bias, spec, out, dout):
            dx = backward_data(dout, out, weight, spec)
            dw, db = backward_weights(dout, out, x, spec)
            return dx, dw, db, ops.zeros_like(spec)

        self.op = _custom(library, "MsGanDenseForward", lambda x, w, b, s: [x[0], w[0]], F32, tag, bprop)

    def construct(self, x, weight, bias):
        return self.op(x, weight, bias, self.spec)


class BatchNormKernel(nn.Cell):
    """``construct(x, gamma, beta, moving_mean, moving_variance)``: training-mode BatchNorm1d of (N, C)
    ``x`` (MindSpore's momentum convention, ``momentum`` = the batch term's weight); updates the moving
    statistics (Parameters) and returns the output; gradients on the kernels."""

    def __init__(self, library, eps, momentum):
        super().__init__()
        self.spec = Tensor(np.array([eps, momentum, 1.0 - momentum], np.float32))   # as BatchNorm1d rounds them
        tag = f"bn:{eps!r}:{momentum!r}"
        backward = _custom(library, "MsGanBatchNormBackward", lambda dy, x, g, s: (dy, g, g), (F32, F32, F32), tag)

        def bprop(x, gamma, beta, moving_mean, moving_variance, spec, out, dout):
            dx, dgamma, dbeta = backward(dout[0], x, gamma, spec)
            return (dx, dgamma, dbeta, ops.zeros_like(moving_mean), ops.zeros_like(moving_variance),
                    ops.zeros_like(spec))

        self.op = _custom(library, "MsGanBatchNormForward", lambda x, g, b, m, v, s: (x, g, g), (F32, F32, F32),
                          tag, bprop)

    def construct(self, x, gamma, beta, moving_mean, moving_variance):
        y, new_mean, new_variance = self.op(x, gamma, beta, moving_mean, moving_variance, self.spec)
        ops.assign(moving_mean, ops.stop_gradient(new_mean))
        ops.assign(moving_variance, ops.stop_gradient(new_variance))
        return y
