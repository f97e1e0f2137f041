"""Build a preset's networks: the right family, the recipe's initialisation, unique names."""
import numpy as np

from ms_gan.nn.init import initialize


def _classes(preset):
    if preset.family == "mlp":
        from ms_gan.models.mlp import MLPDiscriminator, MLPGenerator

        return MLPGenerator, MLPDiscriminator
    from ms_gan.models.convnets import ConvDiscriminator, ConvGenerator

    return ConvGenerator, ConvDiscriminator


def _finish(net, preset, prefix, seed, stream):
    # One generator per network: G's initial weights do not depend on D's size.
    initialize(net, preset.init, np.random.default_rng([int(seed), stream]))
    # Graph mode refuses duplicate Parameter names across the networks a step touches.
    net.update_parameters_name(prefix + ".")
    return net


def build_generator(preset, seed=0):
    """The preset's G, initialised from ``seed``; parameters named ``<g prefix>.*``."""
    return _finish(_classes(preset)[0](preset), preset, preset.param_prefixes[0], seed, 0)


def build_discriminator(preset, seed=0):
    """The preset's D, initialised from ``seed``; parameters named ``<d prefix>.*``."""
    return _finish(_classes(preset)[1](preset), preset, preset.param_prefixes[1], seed, 1)


def build(preset, seed=0):
    """(G, D) for ``preset``."""
    return build_generator(preset, seed), build_discriminator(preset, seed)


def primary(output):
    """The main output of a network that may also return attention maps."""
    return output[0] if isinstance(output, tuple) else output
