"""The TensorFlow DCGAN on 28x28 MNIST (seed 002): ``dcgan_mnist28``.

TF's "SAME" transposed conv k4 s2 from 4x4 gives 7x7: the full 10x10 output cropped by 1
before and 2 after. D's convolutions are SAME too; D ends in a Dense logit (the article's
second sigmoid is dropped, docs/recipes.md).

With ``num_classes`` (``train --conditional``) G's BatchNorms are class-conditional and D adds a
class projection of its flattened last features to the logit (:mod:`ms_gan.nn.conditional`).
"""
from mindspore import nn, ops

from ms_gan.nn.blocks import conv, conv_t
from ms_gan.nn.conditional import Projection, norm2d, normalize, with_projection
from ms_gan.nn.workarounds import LeakyReLU, Tanh


class DCGAN28Generator(nn.Cell):
    """z (N, z_dim) -> image (N, 1, 28, 28): Dense to 256x4x4, then 4 -> 7 -> 14 -> 28."""

    def __init__(self, z_dim=100, slope=0.2, num_classes=0):
        super().__init__()
        self.dense = nn.Dense(z_dim, 256 * 4 * 4)
        self.convt1 = conv_t(256, 128, 4, 2, (1, 2, 1, 2))   # 4 -> 7, TF SAME
        self.bn1 = norm2d(128, num_classes)
        self.convt2 = conv_t(128, 64, 4, 2, 1)               # 7 -> 14
        self.bn2 = norm2d(64, num_classes)
        self.convt3 = conv_t(64, 1, 4, 2, 1)                 # 14 -> 28
        self.relu = nn.ReLU()
        self.lrelu = LeakyReLU(slope)
        self.tanh = Tanh()

    def construct(self, z, y=None):
        x = ops.reshape(self.relu(self.dense(z)), (z.shape[0], 256, 4, 4))
        x = self.lrelu(normalize(self.bn1, self.convt1(x), y))
        x = self.lrelu(normalize(self.bn2, self.convt2(x), y))
        return self.tanh(self.convt3(x))


class DCGAN28Discriminator(nn.Cell):
    """image (N, 1, 28, 28) -> logit (N, 1): SAME convs k4 s2 28 -> 14 -> 7 -> 4, Dense."""

    def __init__(self, slope=0.2, num_classes=0):
        super().__init__()
        self.num_classes = num_classes
        self.conv1 = conv(1, 64, 4, 2, "same")      # 28 -> 14
        self.conv2 = conv(64, 128, 4, 2, "same")    # 14 -> 7
        self.conv3 = conv(128, 256, 4, 2, "same")   # 7 -> 4
        self.dense = nn.Dense(256 * 4 * 4, 1)
        self.lrelu = LeakyReLU(slope)
        self.projection = Projection(num_classes, 256 * 4 * 4) if num_classes else None

    def construct(self, x, y=None):
        x = self.lrelu(self.conv1(x))
        x = self.lrelu(self.conv2(x))
        features = ops.reshape(self.lrelu(self.conv3(x)), (x.shape[0], -1))
        out = self.dense(features)
        if self.num_classes:
            out = with_projection(out, self.projection, features, y)
        return out
