"""The MLP GAN of seed 003 (the MindSpore article): ``mlp_mnist``."""
from mindspore import nn, ops

from ms_gan.nn.blocks import batch_norm
from ms_gan.nn.workarounds import LeakyReLU, Tanh


class MLPGenerator(nn.Cell):
    """z (N, z_dim) -> image (N, 1, 28, 28): Dense 256, 512, 1024 each with ReLU then BatchNorm1d
    (ReLU before BN, as the article writes it), Dense 784, tanh."""

    def __init__(self, z_dim=128, image_shape=(1, 28, 28)):
        super().__init__()
        self.image_shape = tuple(image_shape)
        c, h, w = self.image_shape
        self.dense1 = nn.Dense(z_dim, 256)
        self.bn1 = batch_norm(256, dims=1)
        self.dense2 = nn.Dense(256, 512)
        self.bn2 = batch_norm(512, dims=1)
        self.dense3 = nn.Dense(512, 1024)
        self.bn3 = batch_norm(1024, dims=1)
        self.dense4 = nn.Dense(1024, c * h * w)
        self.relu = nn.ReLU()
        self.tanh = Tanh()

    def construct(self, z):
        x = self.bn1(self.relu(self.dense1(z)))
        x = self.bn2(self.relu(self.dense2(x)))
        x = self.bn3(self.relu(self.dense3(x)))
        x = self.tanh(self.dense4(x))
        return ops.reshape(x, (x.shape[0],) + self.image_shape)


class MLPDiscriminator(nn.Cell):
    """image -> probability (N, 1): Dense 512, LeakyReLU 0.2, Dense 256, LeakyReLU 0.2, Dense 1, sigmoid."""

    def __init__(self, image_shape=(1, 28, 28)):
        super().__init__()
        c, h, w = image_shape
        self.dense1 = nn.Dense(c * h * w, 512)
        self.dense2 = nn.Dense(512, 256)
        self.dense3 = nn.Dense(256, 1)
        self.lrelu = LeakyReLU(0.2)
        self.sigmoid = nn.Sigmoid()

    def construct(self, x):
        x = self.lrelu(self.dense1(ops.reshape(x, (x.shape[0], -1))))
        x = self.lrelu(self.dense2(x))
        return self.sigmoid(self.dense3(x))
