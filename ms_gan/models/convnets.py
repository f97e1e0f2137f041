"""Convolutional generators and discriminators built from a preset's layer list.

Every conv preset (the DCGAN family and SAGAN) is the same two classes fed with a
different layer list, so no variant copies another. A network is a stem, a list of
*stages* and a head; each stage is a tuple of tokens, applied in order:

================================  =============================================
token                             layer
================================  =============================================
``("conv", out, k, s, pad)``      Conv2d (bias on); pad: int, 4-tuple or "same"
``("convt", out, k, s, pad)``     Conv2dTranspose; a 4-tuple pad crops unevenly
``("sn_conv", ...)``              the same wrapped in spectral normalisation
``("sn_convt", ...)``
``"bn"``                          BatchNorm2d (preset's momentum and epsilon)
``"relu"``, ``"lrelu"``           ReLU / LeakyReLU (preset's slope for this net)
``"tanh"``, ``"sigmoid"``
``"dropout"``                     Dropout with the preset's rate
``"up2"``                         nearest-neighbour 2x upsampling (Keras UpSampling2D)
``("zpad", l, r, t, b)``          zero padding (Keras ZeroPadding2D)
================================  =============================================

Stages are stored in a CellList ``layers`` (seed 004's ``layer1``..``last`` are
``layers.0``..``layers.4``); self-attention blocks sit in ``attentions`` and run after
the stages the preset lists. A network with attention returns
``(output, attention_map, ...)``, otherwise just the output.
"""
from mindspore import nn, ops

from ms_gan.nn.blocks import activation, batch_norm, conv, conv_t, sequential


def _out_size(n, token):
    """Spatial size after one token (square feature maps)."""
    if isinstance(token, str):
        return n * 2 if token == "up2" else n
    kind = token[0]
    if kind == "zpad":
        return n + token[3] + token[4]
    _, _, k, s, pad = token
    transposed = kind.endswith("convt")
    if pad == "same":
        return n * s if transposed else -(-n // s)
    before, after = (pad[0], pad[1]) if isinstance(pad, (tuple, list)) else (pad, pad)
    if transposed:
        return (n - 1) * s + k - before - after
    return (n + before + after - k) // s + 1


def _make_layer(token, ch, cfg, slope):
    """Build one token's Cell; returns (cell, out_channels)."""
    if isinstance(token, str):
        if token == "bn":
            return batch_norm(ch, cfg.bn_momentum, cfg.bn_eps), ch
        if token == "dropout":
            return nn.Dropout(p=cfg.dropout), ch
        if token == "up2":
            return nn.Upsample(scale_factor=2.0, mode="nearest", recompute_scale_factor=True), ch
        return activation(token, slope), ch
    kind = token[0]
    if kind == "zpad":
        return nn.ZeroPad2d(tuple(token[1:])), ch
    _, out, k, s, pad = token
    base = kind[3:] if kind.startswith("sn_") else kind
    layer = (conv_t if base == "convt" else conv)(ch, out, k, s, pad)
    if kind.startswith("sn_"):
        from ms_gan.nn.spectral_norm import SpectralNorm

        layer = SpectralNorm(layer, n_power_iterations=cfg.sn_iterations)
    return layer, out


class _ConvStack(nn.Cell):
    """Stages plus optional self-attention after chosen stages."""

    def __init__(self, cfg, stages, in_ch, in_size, slope, attention_after):
        super().__init__()
        cells, ch, size = [], in_ch, in_size
        self.attention_slots = []  # per stage: index into self.attentions, or -1
        attentions = []
        self.attention_shapes = []
        for i, stage in enumerate(stages, start=1):
            layers = []
            for token in stage:
                layer, ch = _make_layer(token, ch, cfg, slope)
                size = _out_size(size, token)
                layers.append(layer)
            cells.append(sequential(*layers))
            if i in attention_after:
                from ms_gan.nn.attention import SelfAttention

                self.attention_slots.append(len(attentions))
                attentions.append(SelfAttention(ch))
                self.attention_shapes.append((ch, size, size))
            else:
                self.attention_slots.append(-1)
        self.layers = nn.CellList(cells)
        self.attentions = nn.CellList(attentions)
        self.attention_slots = tuple(self.attention_slots)
        self.has_attention = bool(attentions)
        self.out_channels, self.out_size = ch, size

    def construct(self, x):
        maps = ()
        for i in range(len(self.attention_slots)):
            x = self.layers[i](x)
            slot = self.attention_slots[i]
            if slot >= 0:
                x, attention_map = self.attentions[slot](x)
                maps = maps + (attention_map,)
        return x, maps


class ConvGenerator(nn.Cell):
    """z (N, z_dim) -> image (N, C, S, S), plus attention maps if the preset has any.

    The stem either views z as (N, z_dim, 1, 1) or projects it with a Dense layer and
    activation to the preset's (channels, size, size) and reshapes.
    """

    def __init__(self, cfg):
        super().__init__()
        stem = cfg.g_stem
        self.stem_shape = (cfg.z_dim, 1, 1) if stem[0] == "reshape" else tuple(stem[1:])
        if stem[0] == "dense":
            c, s, _ = self.stem_shape
            self.stem = sequential(nn.Dense(cfg.z_dim, c * s * s), activation(cfg.g_stem_act))
        else:
            self.stem = None
        self.body = _ConvStack(cfg, cfg.g_stages, self.stem_shape[0], self.stem_shape[1],
                               cfg.g_slope, cfg.g_attention_after)
        if (self.body.out_channels, self.body.out_size) != (cfg.channels, cfg.image_size):
            raise ValueError(f"preset {cfg.name}: G makes {self.body.out_channels}x{self.body.out_size}"
                             f"x{self.body.out_size}, expected {cfg.channels}x{cfg.image_size}x{cfg.image_size}")
        self.has_attention = self.body.has_attention

    def construct(self, z):
        if self.stem is not None:
            z = self.stem(z)
        x = ops.reshape(z, (z.shape[0],) + self.stem_shape)
        x, maps = self.body(x)
        if self.has_attention:
            return (x,) + maps
        return x


class ConvDiscriminator(nn.Cell):
    """image (N, C, S, S) -> one output per image (N, 1): a probability or a logit."""

    def __init__(self, cfg):
        super().__init__()
        self.body = _ConvStack(cfg, cfg.d_stages, cfg.channels, cfg.image_size, cfg.d_slope,
                               cfg.d_attention_after)
        features = self.body.out_channels * self.body.out_size * self.body.out_size
        self.head = nn.Dense(features, 1) if cfg.d_head == "dense" else None
        if self.head is None and features != 1:
            raise ValueError(f"preset {cfg.name}: D ends with {features} values per image, expected 1")
        self.final = activation(cfg.d_final)
        self.has_attention = self.body.has_attention

    def construct(self, x):
        x, maps = self.body(x)
        x = ops.reshape(x, (x.shape[0], -1))
        if self.head is not None:
            x = self.head(x)
        if self.final is not None:
            x = self.final(x)
        if self.has_attention:
            return (x,) + maps
        return x
