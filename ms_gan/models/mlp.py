"""The MLP GAN of seed 003 (MindSpore article), ``mlp_mnist``."""
from mindspore import nn, ops

from ms_gan.nn.blocks import activation, batch_norm, sequential


class MLPGenerator(nn.Cell):
    """z (N, z_dim) -> image (N, C, S, S); ReLU before BatchNorm1d, as the article writes it."""

    def __init__(self, cfg):
        super().__init__()
        dims = (cfg.z_dim,) + tuple(cfg.g_hidden)
        layers = []
        for d_in, d_out in zip(dims[:-1], dims[1:]):
            layers += [nn.Dense(d_in, d_out), nn.ReLU(), batch_norm(d_out, cfg.bn_momentum, cfg.bn_eps, dims=1)]
        out_dim = cfg.channels * cfg.image_size * cfg.image_size
        layers += [nn.Dense(dims[-1], out_dim), activation("tanh")]
        self.model = sequential(*layers)
        self.out_shape = (cfg.channels, cfg.image_size, cfg.image_size)

    def construct(self, z):
        x = self.model(z)
        return ops.reshape(x, (x.shape[0],) + self.out_shape)


class MLPDiscriminator(nn.Cell):
    """image -> probability (N, 1): Dense 512, LReLU 0.2, Dense 256, LReLU 0.2, Dense 1, Sigmoid."""

    def __init__(self, cfg):
        super().__init__()
        dims = (cfg.channels * cfg.image_size * cfg.image_size,) + tuple(cfg.d_hidden)
        layers = []
        for d_in, d_out in zip(dims[:-1], dims[1:]):
            layers += [nn.Dense(d_in, d_out), activation("lrelu", 0.2)]
        layers += [nn.Dense(dims[-1], 1), activation(cfg.d_final)]
        self.model = sequential(*layers)

    def construct(self, x):
        return self.model(ops.reshape(x, (x.shape[0], -1)))
