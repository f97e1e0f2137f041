"""The TensorFlow DCGAN on 28x28 MNIST (seed 002): ``dcgan_mnist28``.

TF's "SAME" transposed conv k4 s2 from 4x4 gives 7x7: the full 10x10 output cropped by 1
before and 2 after. D's convolutions are SAME too; D ends in a Dense logit (the article's
second sigmoid is dropped, docs/recipes.md).
"""
from mindspore import nn, ops

from ms_gan.nn.blocks import batch_norm, conv, conv_t
from ms_gan.nn.workarounds import LeakyReLU, Tanh


class DCGAN28Generator(nn.Cell):
    """z (N, z_dim) -> image (N, 1, 28, 28): Dense to 256x4x4, then 4 -> 7 -> 14 -> 28."""

    def __init__(self, z_dim=100, slope=0.2):
        super().__init__()
        self.dense = nn.Dense(z_dim, 256 * 4 * 4)
        self.convt1 = conv_t(256, 128, 4, 2, (1, 2, 1, 2))   # 4 -> 7, TF SAME
        self.bn1 = batch_norm(128)
        self.convt2 = conv_t(128, 64, 4, 2, 1)               # 7 -> 14
        self.bn2 = batch_norm(64)
        self.convt3 = conv_t(64, 1, 4, 2, 1)                 # 14 -> 28
        self.relu = nn.ReLU()
        self.lrelu = LeakyReLU(slope)
        self.tanh = Tanh()

    def construct(self, z):
        x = ops.reshape(self.relu(self.dense(z)), (z.shape[0], 256, 4, 4))
        x = self.lrelu(self.bn1(self.convt1(x)))
        x = self.lrelu(self.bn2(self.convt2(x)))
        return self.tanh(self.convt3(x))


class DCGAN28Discriminator(nn.Cell):
    """image (N, 1, 28, 28) -> logit (N, 1): SAME convs k4 s2 28 -> 14 -> 7 -> 4, Dense."""

    def __init__(self, slope=0.2):
        super().__init__()
        self.conv1 = conv(1, 64, 4, 2, "same")      # 28 -> 14
        self.conv2 = conv(64, 128, 4, 2, "same")    # 14 -> 7
        self.conv3 = conv(128, 256, 4, 2, "same")   # 7 -> 4
        self.dense = nn.Dense(256 * 4 * 4, 1)
        self.lrelu = LeakyReLU(slope)

    def construct(self, x):
        x = self.lrelu(self.conv1(x))
        x = self.lrelu(self.conv2(x))
        x = self.lrelu(self.conv3(x))
        return self.dense(ops.reshape(x, (x.shape[0], -1)))
