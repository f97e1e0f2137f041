"""GAN losses, in one place. Each returns a scalar mean over the batch.

A loss *family* gives the three terms a training step needs: D's term on real
outputs, D's term on fake outputs, and G's term on D's outputs for fakes.
:data:`LOSS_TERMS` is the registry ``--loss`` chooses from (the names are repeated in the
MindSpore-free :mod:`ms_gan.train.objective`; a test keeps them equal). Only ``bce`` takes
probabilities; every other loss takes D's logit (see ``objective`` for how a sigmoid D gives one).
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


def lsgan_d_real(out):
    """Least squares (Mao et al. 2017), targets 1 for reals: mean((D(x) - 1)^2) / 2."""
    return ops.mean(ops.square(out - 1.0)) * 0.5


def lsgan_d_fake(out):
    """mean(D(G(z))^2) / 2 (target 0 for fakes)."""
    return ops.mean(ops.square(out)) * 0.5


def wasserstein_d_real(out):
    """-mean(D(x)): the critic raises its score of reals."""
    return -ops.mean(out)


def wasserstein_d_fake(out):
    """mean(D(G(z)))."""
    return ops.mean(out)


# Named functions, not lambdas: mindspore.jit cannot parse a lambda defined inside an expression.
def bce_target_one(out):
    """BCE on probabilities against target 1 (D on reals, G on fakes)."""
    return bce(out, ops.ones_like(out))


def bce_target_zero(out):
    return bce(out, ops.zeros_like(out))


def logistic_target_one(out):
    """BCE on logits against target 1 = softplus(-out)."""
    return bce_with_logits(out, ops.ones_like(out))


def logistic_target_zero(out):
    """BCE on logits against target 0 = softplus(out)."""
    return bce_with_logits(out, ops.zeros_like(out))


# name -> (D's term on real outputs, D's term on fake outputs, G's term, D's decision threshold).
# "ns" (non-saturating logistic: D softplus(-D(x)) + softplus(D(G(z))), G softplus(-D(G(z)))) is the
# same function as "bce_logits", which computes softplus stably; the name is the one StyleGAN2 and
# StudioGAN users know. Wasserstein's G term is its hinge's: -mean(D(G(z))).
LOSS_TERMS = {
    "bce": (bce_target_one, bce_target_zero, bce_target_one, 0.5),
    "bce_logits": (logistic_target_one, logistic_target_zero, logistic_target_one, 0.0),
    "ns": (logistic_target_one, logistic_target_zero, logistic_target_one, 0.0),
    "hinge": (hinge_d_real, hinge_d_fake, hinge_g, 0.0),
    "lsgan": (lsgan_d_real, lsgan_d_fake, lsgan_d_real, 0.5),
    "wasserstein": (wasserstein_d_real, wasserstein_d_fake, hinge_g, 0.0),
}


class LossFamily:
    """The D-real, D-fake and G terms of one loss (a :data:`LOSS_TERMS` name), plus D's decision threshold.

    D's accuracy counts outputs on the right side of the threshold: 0.5 for probabilities and for
    LSGAN's 0/1 targets, 0 for logits, hinge and Wasserstein scores.
    """

    def __init__(self, name):
        if name not in LOSS_TERMS:
            raise ValueError(f"unknown loss {name!r}")
        self.name = name
        self.d_real, self.d_fake, self.g, self.threshold = LOSS_TERMS[name]


def l2_half(weights):
    """sum over tensors of sum(W^2)/2 (TensorFlow's tf.nn.l2_loss)."""
    total = 0.0
    for w in weights:
        total = total + ops.sum(w * w) * 0.5
    return total
