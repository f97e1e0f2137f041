"""The MLP GAN of seed 003 (the MindSpore article): ``mlp_mnist``.

Its Dense layers carry their activation (``blocks.Dense``) and its batch norms are :class:`BatchNorm1d`, so
in training on CPU each runs as one :mod:`ms_gan.kernels` operator (bench/NOTES.md, session 5); parameter
names and the math are those of ``nn.Dense`` + activation and ``nn.BatchNorm1d``.
"""
from mindspore import nn, ops

from ms_gan import kernels
from ms_gan.nn import workarounds
from ms_gan.nn.blocks import Dense
from ms_gan.nn.workarounds import LeakyReLU, Tanh


class BatchNorm1d(workarounds.BatchNorm1d):
    """The workarounds BatchNorm1d, in training mode on the kernels' fused operator when available
    (``custom_bn``; None: the batch-axis reductions)."""

    def __init__(self, num_features, momentum=0.9, eps=1e-5):   # blocks.batch_norm's defaults
        super().__init__(num_features, eps=eps, momentum=momentum)
        self.custom_bn = kernels.for_batch_norm(self)

    def construct(self, x):
        if self.training and self.custom_bn is not None:
            return self.custom_bn(x, self.gamma, self.beta, self.moving_mean, self.moving_variance)
        return super().construct(x)


class MLPGenerator(nn.Cell):
    """z (N, z_dim) -> image (N, 1, 28, 28): Dense 256, 512, 1024 each with ReLU then BatchNorm1d
    (ReLU before BN, as the article writes it), Dense 784, tanh."""

    def __init__(self, z_dim=128, image_shape=(1, 28, 28)):
        super().__init__()
        self.image_shape = tuple(image_shape)
        c, h, w = self.image_shape
        self.dense1 = Dense(z_dim, 256, nn.ReLU())
        self.bn1 = BatchNorm1d(256)
        self.dense2 = Dense(256, 512, nn.ReLU())
        self.bn2 = BatchNorm1d(512)
        self.dense3 = Dense(512, 1024, nn.ReLU())
        self.bn3 = BatchNorm1d(1024)
        self.dense4 = Dense(1024, c * h * w, Tanh())

    def construct(self, z):
        x = self.bn1(self.dense1(z))
        x = self.bn2(self.dense2(x))
        x = self.bn3(self.dense3(x))
        x = self.dense4(x)
        return ops.reshape(x, (x.shape[0],) + self.image_shape)


class MLPDiscriminator(nn.Cell):
    """image -> probability (N, 1): Dense 512, LeakyReLU 0.2, Dense 256, LeakyReLU 0.2, Dense 1, sigmoid."""

    def __init__(self, image_shape=(1, 28, 28)):
        super().__init__()
        c, h, w = image_shape
        self.dense1 = Dense(c * h * w, 512, LeakyReLU(0.2))
        self.dense2 = Dense(512, 256, LeakyReLU(0.2))
        self.dense3 = Dense(256, 1)
        self.sigmoid = nn.Sigmoid()

    def construct(self, x):
        x = self.dense1(ops.reshape(x, (x.shape[0], -1)))
        x = self.dense2(x)
        return self.sigmoid(self.dense3(x))
