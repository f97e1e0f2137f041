"""The tiny DCGAN on 8x8 digits (seed 000): ``dcgan_digits8``. No padding, stride 1 everywhere."""
from mindspore import nn, ops

from ms_gan.nn.blocks import conv, conv_t
from ms_gan.nn.workarounds import LeakyReLU, Tanh


class DCGAN8Generator(nn.Cell):
    """z (N, z_dim) -> image (N, 1, 8, 8): transposed convs k3 (1 -> 3), k3 (-> 5), k4 (-> 8)."""

    def __init__(self, z_dim=64):
        super().__init__()
        self.z_dim = z_dim
        self.convt1 = conv_t(z_dim, 64, 3)   # 1 -> 3
        self.convt2 = conv_t(64, 32, 3)      # 3 -> 5
        self.convt3 = conv_t(32, 1, 4)       # 5 -> 8
        self.relu = nn.ReLU()
        self.tanh = Tanh()

    def construct(self, z):
        x = ops.reshape(z, (z.shape[0], self.z_dim, 1, 1))
        x = self.relu(self.convt1(x))
        x = self.relu(self.convt2(x))
        return self.tanh(self.convt3(x))


class DCGAN8Discriminator(nn.Cell):
    """image (N, 1, 8, 8) -> probability (N, 1): convs k4 (8 -> 5), k3 (-> 3), k3 (-> 1), LeakyReLU 0.2."""

    def __init__(self):
        super().__init__()
        self.conv1 = conv(1, 16, 4)     # 8 -> 5
        self.conv2 = conv(16, 32, 3)    # 5 -> 3
        self.conv3 = conv(32, 1, 3)     # 3 -> 1
        self.lrelu = LeakyReLU(0.2)
        self.sigmoid = nn.Sigmoid()

    def construct(self, x):
        x = self.lrelu(self.conv1(x))
        x = self.lrelu(self.conv2(x))
        x = self.conv3(x)
        return self.sigmoid(ops.reshape(x, (x.shape[0], 1)))
