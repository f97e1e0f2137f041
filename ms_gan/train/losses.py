"""GAN losses, in one place. Each returns a scalar mean over the batch.

A loss *family* gives the three terms a training step needs: D's term on real
outputs, D's term on fake outputs, and G's term on D's outputs for fakes.
"""
from mindspore import nn, ops

from ms_gan.nn import workarounds

_LOG_MIN = -100.0  # PyTorch's BCELoss clamps log() at -100 so a saturated D gives a finite loss
_GRAD_EPS = 1e-12  # ... and divides its gradient by max(p (1 - p), 1e-12)


def _floor_log(x):
    # select, not clamp: clamp(NaN) returns the bound in MindSpore and would hide a NaN.
    log_x = ops.log(x)
    return ops.where(log_x < _LOG_MIN, _LOG_MIN, log_x)


class _BCEOnProbabilities(nn.Cell):
    """Elementwise BCE with torch.nn.BCELoss's forward *and* backward.

    Autodiff through clamp(log(p)) gives inf * 0 = NaN once a sigmoid saturates to
    exactly 0 or 1 in float32 (|logit| > ~17..88), which kills training (seen on
    dcgan_digits8 after a few epochs). PyTorch's backward is (p - t) / max(p (1 - p), eps);
    this custom bprop is the same, in graph and PyNative mode.
    """

    def construct(self, prob, target):
        return -(target * _floor_log(prob) + (1.0 - target) * _floor_log(1.0 - prob))

    def bprop(self, prob, target, out, dout):
        denom = ops.maximum(prob * (1.0 - prob), _GRAD_EPS)
        return workarounds.divide(dout * (prob - target), denom), ops.zeros_like(target)


_bce_elementwise = _BCEOnProbabilities()


def bce(prob, target):
    """Binary cross-entropy on probabilities (D ends in a sigmoid), as torch.nn.BCELoss computes it."""
    return ops.mean(_bce_elementwise(prob, target))


def bce_with_logits(logit, target):
    """Binary cross-entropy on logits, the numerically stable form max(x,0) - x*t + log(1+exp(-|x|))."""
    return ops.mean(ops.relu(logit) - logit * target + ops.log1p(ops.exp(-ops.abs(logit))))


def hinge_d_real(out):
    """mean(relu(1 - D(x)))."""
    return ops.mean(ops.relu(1.0 - out))


def hinge_d_fake(out):
    """mean(relu(1 + D(G(z))))."""
    return ops.mean(ops.relu(1.0 + out))


def hinge_g(out):
    """-mean(D(G(z)))."""
    return -ops.mean(out)


class LossFamily:
    """The D-real, D-fake and G terms of one loss, plus D's decision threshold."""

    def __init__(self, name):
        if name not in ("bce", "bce_logits", "hinge"):
            raise ValueError(f"unknown loss {name!r}")
        self.name = name
        # D accuracy: outputs on the right side of 0.5 for probabilities, of 0 for logits/hinge.
        self.threshold = 0.5 if name == "bce" else 0.0

    def d_real(self, out):
        if self.name == "hinge":
            return hinge_d_real(out)
        fn = bce if self.name == "bce" else bce_with_logits
        return fn(out, ops.ones_like(out))

    def d_fake(self, out):
        if self.name == "hinge":
            return hinge_d_fake(out)
        fn = bce if self.name == "bce" else bce_with_logits
        return fn(out, ops.zeros_like(out))

    def g(self, out):
        if self.name == "hinge":
            return hinge_g(out)
        fn = bce if self.name == "bce" else bce_with_logits
        return fn(out, ops.ones_like(out))


def l2_half(weights):
    """sum over tensors of sum(W^2)/2 (TensorFlow's tf.nn.l2_loss)."""
    total = 0.0
    for w in weights:
        total = total + ops.sum(w * w) * 0.5
    return total
