"""Gradient penalties on D's input gradient: WGAN-GP and R1, differentiated twice by MindSpore.

Both are the norm of grad_x D(x), made by ``mindspore.grad`` inside the D update's loss, so
``value_and_grad`` over D's parameters differentiates a gradient. What MindSpore 2.10 (CPU)
does with that, measured against ``torch.autograd.grad(create_graph=True)``
(tests/train/test_penalties.py):

* graph mode (``mindspore.jit``): Conv2D, the MatMul form of the conv head, ReLU/LeakyReLU
  (``workarounds.LeakyReLU``'s stop_gradient scale), RealDiv and spectral norm's power iteration
  give the penalty and parameter gradients within float32 rounding of PyTorch's;
* PyNative: wrong. A Reshape anywhere after the first layer zeroes the second derivative
  w.r.t. the layers behind it (``x -> (x @ W1 * 2).reshape(..) @ W`` gives d/dW = 0), so
  :func:`ms_gan.train.objective.check_penalties` refuses PyNative with a one-line error;
* a Cell with a hand-written ``bprop`` (SAGAN's :class:`~ms_gan.nn.attention.AttentionCore`)
  cannot be differentiated twice (graph compilation fails: "func graph is empty"), so
  :func:`make_twice_differentiable` gives D's attention blocks the plain formula. D's maps are
  small (8x8 and 4x4 positions: (B, 64, 64) and (B, 16, 16)), so the memory the hand-written
  backward saves (it matters for G's 32x32 map) is not needed there.
"""
import mindspore as ms
from mindspore import nn, ops

from ms_gan import kernels
from ms_gan.models import primary

# Under the square root of the gradient norm: sqrt's derivative at an exactly zero input
# gradient is inf, times 0 = NaN in MindSpore (torch's norm backward returns 0 there).
_NORM_EPS = 1e-12


class PlainAttentionCore(nn.Cell):
    """(q, k, v) -> v @ softmax(k^T q)^T by automatic differentiation (twice differentiable).

    The same function as :class:`ms_gan.nn.attention.AttentionCore` (which it replaces in D when a
    penalty is on), without its hand-written backward.
    """

    def __init__(self):
        super().__init__()
        self.bmm_ta = ops.BatchMatMul(transpose_a=True)
        self.bmm_tb = ops.BatchMatMul(transpose_b=True)
        self.softmax = ops.Softmax(axis=-1)

    def attention_map(self, q, k):
        return self.softmax(self.bmm_ta(k, q))

    def construct(self, q, k, v):
        return self.bmm_tb(v, self.attention_map(q, k))


def make_twice_differentiable(net):
    """Give every self-attention block of ``net`` the plain formula and every convolution MindSpore's own op
    (no parameters change); returns ``net``."""
    from ms_gan.nn.attention import AttentionCore

    blocks = [cell for _, cell in net.cells_and_names() if isinstance(getattr(cell, "core", None), AttentionCore)]
    for cell in blocks:
        cell.core = PlainAttentionCore()
    return kernels.use_native(net)   # the CPU kernels' custom ops cannot be differentiated twice either


def input_gradient(D):
    """``x -> grad_x sum(D(x))``: each image's gradient of its own output (D treats images independently)."""

    def summed_output(x):
        return ops.sum(primary(D(x)))

    return ms.grad(summed_output, grad_position=0)


def _squared_norms(grad):
    return ops.sum(grad * grad, (1, 2, 3))


def gradient_penalty(grad_fn, real, fake, alpha, weight):
    """WGAN-GP (Gulrajani et al. 2017): ``weight * mean((||grad D(x_hat)||_2 - 1)^2)``.

    ``x_hat = alpha * real + (1 - alpha) * fake`` with one ``alpha`` ~ U(0, 1) per image (shape (B,)).
    """
    a = ops.reshape(alpha, (-1, 1, 1, 1))
    x_hat = a * real + (1.0 - a) * fake
    norms = ops.sqrt(_squared_norms(grad_fn(x_hat)) + _NORM_EPS)
    return weight * ops.mean(ops.square(norms - 1.0))


def r1_penalty(grad_fn, real, weight):
    """R1 (Mescheder et al. 2018): ``weight * mean(||grad D(x)||^2)`` on reals; weight = gamma / 2 (x k if lazy)."""
    return weight * ops.mean(_squared_norms(grad_fn(real)))
