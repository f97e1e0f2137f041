"""Gradient penalties on D's input gradient: WGAN-GP and R1, differentiated twice by MindSpore.

Both are the norm of grad_x D(x), made by ``mindspore.grad`` inside the D update's loss, so
``value_and_grad`` over D's parameters differentiates a gradient. What MindSpore 2.10 (CPU)
does with that, measured against ``torch.autograd.grad(create_graph=True)``
(tests/train/test_penalties.py):

* graph mode (``mindspore.jit``): Conv2D, the MatMul form of the conv head, ReLU/LeakyReLU
  (``workarounds.LeakyReLU``'s stop_gradient scale), RealDiv and spectral norm's power iteration
  give the penalty and parameter gradients within float32 rounding of PyTorch's;
* PyNative: the second derivative is wrong when the first one runs eagerly: PyNative's autograd
  takes an input gradient that a backward function returns as a view (Reshape, Transpose, ...:
  every conv D's head has one) as a constant, so the D gradients of the penalty behind it are 0
  or wrong, and Softmax's (SAGAN's attention) fails (docs/mindspore_double_grad.md).
  :func:`input_gradient` therefore compiles the input gradient with ``mindspore.jit`` in PyNative
  (:func:`ms_gan.nn.workarounds.compiled_in_pynative`); the rest of the update stays eager, and
  both modes match PyTorch;
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
from ms_gan.nn.workarounds import compiled_in_pynative

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


def input_gradient(D, conditional=False, eager=False):
    """``x -> grad_x sum(D(x))``: each image's gradient of its own output (D treats images independently).

    ``conditional``: ``(x, y) -> grad_x sum(D(x, y))``, the labels ``y`` held fixed (a projection D
    judges each image with its class). ``eager`` (PyNative): compiled, see the module docstring.
    """
    if conditional:
        def summed_output(x, y):
            return ops.sum(primary(D(x, y)))
    else:
        def summed_output(x):
            return ops.sum(primary(D(x)))

    grad_fn = ms.grad(summed_output, grad_position=0)
    return compiled_in_pynative(grad_fn) if eager else grad_fn


def _squared_norms(grad):
    return ops.sum(grad * grad, (1, 2, 3))


def _at(grad_fn, x, y):
    return grad_fn(x) if y is None else grad_fn(x, y)


def gradient_penalty(grad_fn, real, fake, alpha, weight, y=None):
    """WGAN-GP (Gulrajani et al. 2017): ``weight * mean((||grad D(x_hat)||_2 - 1)^2)``.

    ``x_hat = alpha * real + (1 - alpha) * fake`` with one ``alpha`` ~ U(0, 1) per image (shape (B,)).
    A conditional D judges ``x_hat`` with the real images' labels ``y`` (StudioGAN's choice: the
    interpolate starts from the real image, and a fake's label is a uniform draw unrelated to it).
    """
    a = ops.reshape(alpha, (-1, 1, 1, 1))
    x_hat = a * real + (1.0 - a) * fake
    norms = ops.sqrt(_squared_norms(_at(grad_fn, x_hat, y)) + _NORM_EPS)
    return weight * ops.mean(ops.square(norms - 1.0))


def r1_penalty(grad_fn, real, weight, y=None):
    """R1 (Mescheder et al. 2018): ``weight * mean(||grad D(x)||^2)`` on reals (of classes ``y`` for a
    conditional D); weight = gamma / 2 (x k if lazy)."""
    return weight * ops.mean(_squared_norms(_at(grad_fn, real, y)))
