"""DCGAN and SAGAN at 64x64 (seed 004): ``dcgan64`` and, with spectral norm and attention, ``sagan64``.

G: z (N, z_dim) viewed as (N, z_dim, 1, 1) -> 4 -> 8 -> 16 -> 32 -> 64 by transposed convs k4
(s1 p0, then s2 p1), each but the last followed by BatchNorm and ReLU, the last by tanh.
D: 64 -> 32 -> 16 -> 8 -> 4 by convs k4 s2 p1 with LeakyReLU 0.1, then a k4 conv to one logit.

``spectral=True`` wraps the first four convolutions of each network in spectral norm;
``attention_at`` lists feature-map sizes after which a self-attention block runs (SAGAN:
16 and 32 in G, 8 and 4 in D). A network with attention returns
``(output, attention map, ...)`` in the order the blocks run, otherwise the output.

With ``num_classes`` (``train --conditional``) G's BatchNorms are class-conditional and D adds a
class projection of its last 4x4 map (flattened: conv5 covers it whole) to the logit
(:mod:`ms_gan.nn.conditional`).
"""
from mindspore import nn, ops

from ms_gan.nn.attention import SelfAttention
from ms_gan.nn.blocks import conv, conv_t
from ms_gan.nn.conditional import Projection, norm2d, normalize, with_projection
from ms_gan.nn.spectral_norm import SpectralNorm
from ms_gan.nn.workarounds import LeakyReLU, Tanh


def _maybe_spectral(layer, spectral, sn_iterations):
    return SpectralNorm(layer, n_power_iterations=sn_iterations) if spectral else layer


def _attention_blocks(cell, attention_at, channels_at):
    """Set ``cell.attn<size>`` for every size in ``channels_at`` (None where no attention is asked)."""
    unknown = set(attention_at) - set(channels_at)
    if unknown:
        raise ValueError(f"attention_at {sorted(unknown)}: choose feature-map sizes among {sorted(channels_at)}")
    # Declared after every convolution, in the order they run: initial weights are drawn in
    # declaration order (ms_gan.nn.init), so a seed gives the same weights as it always has.
    for size, channels in channels_at.items():
        setattr(cell, f"attn{size}", SelfAttention(channels) if size in attention_at else None)
    cell.has_attention = bool(attention_at)


def _attend(block, x, maps):
    """(x, maps) after the self-attention ``block``, its map appended; unchanged when ``block`` is None."""
    if block is None:
        return x, maps
    x, attention_map = block(x)
    return x, maps + (attention_map,)


class DCGAN64Generator(nn.Cell):
    """z (N, z_dim) -> image (N, channels, 64, 64) [, attention maps]."""

    def __init__(self, z_dim=20, channels=1, spectral=False, attention_at=(), sn_iterations=1, num_classes=0):
        super().__init__()
        sn = (spectral, sn_iterations)
        self.z_dim = z_dim
        self.convt1 = _maybe_spectral(conv_t(z_dim, 512, 4, 1, 0), *sn)   # 1 -> 4
        self.bn1 = norm2d(512, num_classes)
        self.convt2 = _maybe_spectral(conv_t(512, 256, 4, 2, 1), *sn)     # 4 -> 8
        self.bn2 = norm2d(256, num_classes)
        self.convt3 = _maybe_spectral(conv_t(256, 128, 4, 2, 1), *sn)     # 8 -> 16
        self.bn3 = norm2d(128, num_classes)
        self.convt4 = _maybe_spectral(conv_t(128, 64, 4, 2, 1), *sn)      # 16 -> 32
        self.bn4 = norm2d(64, num_classes)
        self.convt5 = conv_t(64, channels, 4, 2, 1)                       # 32 -> 64
        self.relu = nn.ReLU()
        self.tanh = Tanh()
        _attention_blocks(self, attention_at, {4: 512, 8: 256, 16: 128, 32: 64})

    def construct(self, z, y=None):
        maps = ()
        x = ops.reshape(z, (z.shape[0], self.z_dim, 1, 1))
        x, maps = _attend(self.attn4, self.relu(normalize(self.bn1, self.convt1(x), y)), maps)     # 4x4
        x, maps = _attend(self.attn8, self.relu(normalize(self.bn2, self.convt2(x), y)), maps)     # 8x8
        x, maps = _attend(self.attn16, self.relu(normalize(self.bn3, self.convt3(x), y)), maps)    # 16x16
        x, maps = _attend(self.attn32, self.relu(normalize(self.bn4, self.convt4(x), y)), maps)    # 32x32
        x = self.tanh(self.convt5(x))
        if self.has_attention:
            return (x,) + maps
        return x


class DCGAN64Discriminator(nn.Cell):
    """image (N, channels, 64, 64) -> logit (N, 1) [, attention maps]."""

    def __init__(self, channels=1, slope=0.1, spectral=False, attention_at=(), sn_iterations=1, num_classes=0):
        super().__init__()
        sn = (spectral, sn_iterations)
        self.num_classes = num_classes
        self.conv1 = _maybe_spectral(conv(channels, 64, 4, 2, 1), *sn)    # 64 -> 32
        self.conv2 = _maybe_spectral(conv(64, 128, 4, 2, 1), *sn)         # 32 -> 16
        self.conv3 = _maybe_spectral(conv(128, 256, 4, 2, 1), *sn)        # 16 -> 8
        self.conv4 = _maybe_spectral(conv(256, 512, 4, 2, 1), *sn)        # 8 -> 4
        self.conv5 = conv(512, 1, 4, 1, 0)                                # 4 -> 1
        self.lrelu = LeakyReLU(slope)
        _attention_blocks(self, attention_at, {32: 64, 16: 128, 8: 256, 4: 512})
        self.projection = Projection(num_classes, 512 * 4 * 4) if num_classes else None

    def construct(self, x, y=None):
        maps = ()
        x, maps = _attend(self.attn32, self.lrelu(self.conv1(x)), maps)   # 32x32
        x, maps = _attend(self.attn16, self.lrelu(self.conv2(x)), maps)   # 16x16
        x, maps = _attend(self.attn8, self.lrelu(self.conv3(x)), maps)    # 8x8
        x, maps = _attend(self.attn4, self.lrelu(self.conv4(x)), maps)    # 4x4
        features = x
        x = ops.reshape(self.conv5(features), (features.shape[0], 1))
        if self.num_classes:
            x = with_projection(x, self.projection, features, y)
        if self.has_attention:
            return (x,) + maps
        return x
