"""Build a preset's networks: its family's classes, the recipe's initialisation, unique names."""
import numpy as np
from mindspore import nn

from ms_gan.nn.conditional import initialize_conditional
from ms_gan.nn.init import initialize


def family_classes(family):
    """(G class, D class) of an architecture family; docs/recipes.md describes each recipe."""
    from ms_gan.models.dcgan64 import DCGAN64Discriminator, DCGAN64Generator
    from ms_gan.models.dcgan128_rgb import DCGAN128RGBDiscriminator, DCGAN128RGBGenerator
    from ms_gan.models.dcgan_digits8 import DCGAN8Discriminator, DCGAN8Generator
    from ms_gan.models.dcgan_mnist28 import DCGAN28Discriminator, DCGAN28Generator
    from ms_gan.models.mlp import MLPDiscriminator, MLPGenerator

    return {
        "mlp": (MLPGenerator, MLPDiscriminator),
        "dcgan_digits8": (DCGAN8Generator, DCGAN8Discriminator),
        "dcgan_mnist28": (DCGAN28Generator, DCGAN28Discriminator),
        "dcgan64": (DCGAN64Generator, DCGAN64Discriminator),
        "dcgan128_rgb": (DCGAN128RGBGenerator, DCGAN128RGBDiscriminator),
    }[family]


# Which preset numbers each family's classes take (beyond the preset's g_options / d_options).
_G_ARGS = {"mlp": ("z_dim", "image_shape"), "dcgan_digits8": ("z_dim",), "dcgan_mnist28": ("z_dim",),
           "dcgan64": ("z_dim", "channels"), "dcgan128_rgb": ("z_dim",)}
_D_ARGS = {"mlp": ("image_shape",), "dcgan_digits8": (), "dcgan_mnist28": (), "dcgan64": ("channels",),
           "dcgan128_rgb": ()}


def network_kwargs(preset, role):
    """Keyword arguments of the preset's G ('G') or D ('D') class: its numbers plus g_options / d_options."""
    names = (_G_ARGS if role == "G" else _D_ARGS)[preset.family]
    options = dict(preset.g_options if role == "G" else preset.d_options)
    values = {"z_dim": preset.z_dim, "channels": preset.channels,
              "image_shape": (preset.channels, preset.image_size, preset.image_size)}
    kwargs = {name: values[name] for name in names}
    kwargs.update(options)
    if preset.num_classes:   # a conditional model (ms_gan.nn.conditional); the presets refuse it for mlp
        kwargs["num_classes"] = preset.num_classes
    if options.get("spectral"):
        kwargs["sn_iterations"] = preset.sn_iterations
    return kwargs


def _finish(net, preset, prefix, seed, stream):
    # One generator per network: G's initial weights do not depend on D's size.
    rng = np.random.default_rng([int(seed), stream])
    initialize(net, preset.init, rng)
    initialize_conditional(net, preset.init, rng)   # class tables, drawn after everything else (none: no draw)
    # Graph mode refuses duplicate Parameter names across the networks a step touches.
    net.update_parameters_name(prefix + ".")
    return net


def build_generator(preset, seed=0):
    """The preset's G, initialised from ``seed``; parameters named ``<g prefix>.*``."""
    net = family_classes(preset.family)[0](**network_kwargs(preset, "G"))
    return _finish(net, preset, preset.param_prefixes[0], seed, 0)


def build_discriminator(preset, seed=0):
    """The preset's D, initialised from ``seed``; parameters named ``<d prefix>.*``."""
    net = family_classes(preset.family)[1](**network_kwargs(preset, "D"))
    if preset.d_output == "logit" and isinstance(getattr(net, "sigmoid", None), nn.Sigmoid):
        # A logit loss chosen for a D that ends in a sigmoid (--loss, ms_gan.train.objective):
        # D's output is the logit before it. The sigmoid has no parameters.
        net.sigmoid = nn.Identity()
    return _finish(net, preset, preset.param_prefixes[1], seed, 1)


def build(preset, seed=0):
    """(G, D) for ``preset``."""
    return build_generator(preset, seed), build_discriminator(preset, seed)


def primary(output):
    """The main output of a network that may also return attention maps."""
    return output[0] if isinstance(output, tuple) else output
