"""The Keras upsampling DCGAN on 128x128 RGB (seed 001): ``dcgan128_rgb``.

Keras BatchNormalization(momentum=0.8) is MindSpore momentum 0.8 with Keras' epsilon 1e-3;
"same" padding throughout; D's ZeroPadding2D((0, 1), (0, 1)) pads right and bottom.

With ``num_classes`` (``train --conditional``) G's BatchNorms are class-conditional and D adds a
class projection of its flattened last features to the logit (:mod:`ms_gan.nn.conditional`).
"""
from mindspore import nn, ops

from ms_gan.nn.blocks import batch_norm, conv, upsample2x
from ms_gan.nn.conditional import Projection, norm2d, normalize, with_projection
from ms_gan.nn.workarounds import LeakyReLU, Tanh

KERAS_BN = dict(momentum=0.8, eps=1e-3)


class DCGAN128RGBGenerator(nn.Cell):
    """z (N, z_dim) -> image (N, 3, 128, 128): Dense to 128x32x32, then BN, 2x up, conv (twice), BN, conv."""

    def __init__(self, z_dim=100, num_classes=0):
        super().__init__()
        self.dense = nn.Dense(z_dim, 128 * 32 * 32)
        self.bn1 = norm2d(128, num_classes, **KERAS_BN)
        self.conv1 = conv(128, 128, 3, 1, "same")   # 64 x 64 after upsampling
        self.bn2 = norm2d(128, num_classes, **KERAS_BN)
        self.conv2 = conv(128, 64, 3, 1, "same")    # 128 x 128 after upsampling
        self.bn3 = norm2d(64, num_classes, **KERAS_BN)
        self.conv3 = conv(64, 3, 3, 1, "same")
        self.up = upsample2x()
        self.relu = nn.ReLU()
        self.tanh = Tanh()

    def construct(self, z, y=None):
        x = ops.reshape(self.relu(self.dense(z)), (z.shape[0], 128, 32, 32))
        x = self.relu(self.conv1(self.up(normalize(self.bn1, x, y))))
        x = self.relu(self.conv2(self.up(normalize(self.bn2, x, y))))
        return self.tanh(self.conv3(normalize(self.bn3, x, y)))


class DCGAN128RGBDiscriminator(nn.Cell):
    """image (N, 3, 128, 128) -> probability (N, 1): SAME convs 128 -> 64 -> 32 (+pad 33) -> 17 -> 17, Dense."""

    def __init__(self, dropout=0.25, slope=0.2, num_classes=0):
        super().__init__()
        self.num_classes = num_classes
        self.conv1 = conv(3, 32, 3, 2, "same")       # 128 -> 64
        self.drop1 = nn.Dropout(p=dropout)
        self.conv2 = conv(32, 64, 3, 2, "same")      # 64 -> 32
        self.pad2 = nn.ZeroPad2d((0, 1, 0, 1))       # 32 -> 33 (left, right, top, bottom)
        self.drop2 = nn.Dropout(p=dropout)
        self.bn2 = batch_norm(64, **KERAS_BN)
        self.conv3 = conv(64, 128, 3, 2, "same")     # 33 -> 17
        self.drop3 = nn.Dropout(p=dropout)
        self.bn3 = batch_norm(128, **KERAS_BN)
        self.conv4 = conv(128, 256, 3, 1, "same")    # 17 -> 17
        self.drop4 = nn.Dropout(p=dropout)
        self.dense = nn.Dense(256 * 17 * 17, 1)
        self.lrelu = LeakyReLU(slope)
        self.sigmoid = nn.Sigmoid()
        self.projection = Projection(num_classes, 256 * 17 * 17) if num_classes else None

    def construct(self, x, y=None):
        x = self.drop1(self.lrelu(self.conv1(x)))
        x = self.bn2(self.drop2(self.lrelu(self.pad2(self.conv2(x)))))
        x = self.bn3(self.drop3(self.lrelu(self.conv3(x))))
        features = ops.reshape(self.drop4(self.lrelu(self.conv4(x))), (x.shape[0], -1))
        out = self.dense(features)
        if self.num_classes:
            out = with_projection(out, self.projection, features, y)
        return self.sigmoid(out)
