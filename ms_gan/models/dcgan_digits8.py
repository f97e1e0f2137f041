"""The tiny DCGAN on 8x8 digits (seed 000): ``dcgan_digits8``. No padding, stride 1 everywhere.

With ``num_classes`` (``cdcgan_digits8``, ``train --conditional``) G concatenates a learned class
embedding to z (it has no BatchNorm to condition) and D adds a class projection to its logit
(:mod:`ms_gan.nn.conditional`).
"""
from mindspore import nn, ops

from ms_gan.nn.blocks import conv, conv_t
from ms_gan.nn.conditional import ClassEmbedding, Projection, with_projection
from ms_gan.nn.workarounds import LeakyReLU, Tanh


class DCGAN8Generator(nn.Cell):
    """z (N, z_dim) -> image (N, 1, 8, 8): transposed convs k3 (1 -> 3), k3 (-> 5), k4 (-> 8)."""

    def __init__(self, z_dim=64, num_classes=0, class_dim=16):
        super().__init__()
        self.z_dim = z_dim
        self.num_classes = num_classes
        self.in_channels = z_dim + (class_dim if num_classes else 0)
        self.convt1 = conv_t(self.in_channels, 64, 3)   # 1 -> 3
        self.convt2 = conv_t(64, 32, 3)      # 3 -> 5
        self.convt3 = conv_t(32, 1, 4)       # 5 -> 8
        self.relu = nn.ReLU()
        self.tanh = Tanh()
        self.class_embed = ClassEmbedding(num_classes, class_dim) if num_classes else None

    def construct(self, z, y=None):
        if self.num_classes:
            z = ops.concat((z, self.class_embed(y)), 1)
        x = ops.reshape(z, (z.shape[0], self.in_channels, 1, 1))
        x = self.relu(self.convt1(x))
        x = self.relu(self.convt2(x))
        return self.tanh(self.convt3(x))


class DCGAN8Discriminator(nn.Cell):
    """image (N, 1, 8, 8) -> probability (N, 1): convs k4 (8 -> 5), k3 (-> 3), k3 (-> 1), LeakyReLU 0.2."""

    def __init__(self, num_classes=0):
        super().__init__()
        self.num_classes = num_classes
        self.conv1 = conv(1, 16, 4)     # 8 -> 5
        self.conv2 = conv(16, 32, 3)    # 5 -> 3
        self.conv3 = conv(32, 1, 3)     # 3 -> 1
        self.lrelu = LeakyReLU(0.2)
        self.sigmoid = nn.Sigmoid()
        # conv3 (k3 on the 3x3 map) is a Dense on the flattened map: the projection reads the same 288 numbers
        self.projection = Projection(num_classes, 32 * 3 * 3) if num_classes else None

    def construct(self, x, y=None):
        x = self.lrelu(self.conv1(x))
        features = self.lrelu(self.conv2(x))
        x = ops.reshape(self.conv3(features), (features.shape[0], 1))
        if self.num_classes:
            x = with_projection(x, self.projection, features, y)
        return self.sigmoid(x)
