"""Exponential moving average of G's weights (``--ema DECAY``).

Shadow copies live in Parameters named ``ema.<G parameter name>``, so they are saved in
the checkpoint beside G. Trainable weights are averaged,
``ema = decay * ema + (1 - decay) * w``; everything else G holds (BatchNorm moving
statistics, spectral-norm vectors) is copied as is, so the averaged G is usable in eval
mode. ``sample``, ``interpolate``, ``attention``, ``export`` and ``eval`` use the averaged
weights when a checkpoint has them (``--no-ema`` opts out).
"""
import mindspore as ms
from mindspore import nn, ops

PREFIX = "ema."


class EMA(nn.Cell):
    """Moving average of a network's parameters; call it after each G update."""

    def __init__(self, net, decay):
        super().__init__(auto_prefix=False)
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must be in (0, 1), got {decay}")
        self.decay = float(decay)
        params = list(net.get_parameters())
        self.averaged = ms.ParameterTuple([p for p in params if p.requires_grad])
        self.copied = ms.ParameterTuple([p for p in params if not p.requires_grad])
        self.avg_shadow = ms.ParameterTuple([ms.Parameter(p.data.copy(), name=PREFIX + p.name, requires_grad=False)
                                             for p in self.averaged])
        self.copy_shadow = ms.ParameterTuple([ms.Parameter(p.data.copy(), name=PREFIX + p.name, requires_grad=False)
                                              for p in self.copied])
        self.hyper_map = ops.HyperMap()

    def state_parameters(self):
        return list(self.avg_shadow) + list(self.copy_shadow)

    def construct(self):
        self.hyper_map(ops.partial(_average, self.decay), self.avg_shadow, self.averaged)
        self.hyper_map(_copy, self.copy_shadow, self.copied)
        return True


def _average(decay, shadow, value):
    ops.assign(shadow, decay * shadow + (1.0 - decay) * value)
    return True


def _copy(shadow, value):
    ops.assign(shadow, value)
    return True


def has_ema(params, net):
    """True when a checkpoint's ``params`` hold an EMA shadow for every parameter of ``net``."""
    return all(PREFIX + p.name in params for p in net.get_parameters())


def ema_values(params, net):
    """The checkpoint values of the EMA shadows, keyed by ``net``'s own parameter names."""
    return {p.name: params[PREFIX + p.name] for p in net.get_parameters()}
