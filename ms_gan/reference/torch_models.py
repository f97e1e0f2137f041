"""PyTorch definitions of every preset's G and D, and of one training iteration of its recipe.

Written from SPEC.md (not from ms_gan's code), with the Keras/TensorFlow semantics of
seeds 001 and 002 expressed in PyTorch:

* TF "SAME" convolution: explicit zero padding, ``total = max((ceil(n/s)-1)*s + k - n, 0)``
  split ``total // 2`` before and the rest after (:class:`SameConv2d`).
* TF "SAME" transposed conv k4 s2 4->7: ``ConvTranspose2d(padding=0)`` (4->10), then crop
  ``[1:8]`` (:class:`CropConvTranspose2d`, crop given as (top, bottom, left, right)).
* Keras BatchNormalization(momentum=0.8, epsilon=1e-3): ``BatchNorm2d(momentum=0.2, eps=1e-3)``
  (torch's momentum weighs the batch statistics).
* SAGAN: ``torch.nn.utils.spectral_norm`` and seed 004's ``Self_Attention``.
* Class-conditional models (``num_classes``): conditional BatchNorm (BatchNorm without affine,
  per-class scale/shift tables), a class ``nn.Embedding`` concatenated to z (dcgan_digits8), and
  the projection discriminator (Miyato & Koyama 2018) adding ``<Embedding(y), flatten(phi(x))>``
  to the logit, ``phi`` the input of D's last layer.

Module names are those of ms_gan's networks (``convt1``, ``bn1``, ``attn16``, ``dense``, ...)
and the classes take the same keyword arguments (:func:`ms_gan.models.registry.network_kwargs`),
so state-dict names map mechanically onto MindSpore's; every layer's semantics here is plain
PyTorch. torch is imported at the top: only tests and benchmarks import this module.
"""
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class SameConv2d(nn.Conv2d):
    """Conv2d with TensorFlow's SAME padding (the odd extra row/column goes at the end)."""

    def forward(self, x):
        pads = []
        for dim, (k, s) in zip((3, 2), zip(self.kernel_size[::-1], self.stride[::-1])):
            n = x.shape[dim]
            total = max((math.ceil(n / s) - 1) * s + k - n, 0)
            pads += [total // 2, total - total // 2]
        return super().forward(F.pad(x, pads))


class CropConvTranspose2d(nn.ConvTranspose2d):
    """ConvTranspose2d without padding, then an uneven crop (top, bottom, left, right)."""

    def __init__(self, *args, crop=(0, 0, 0, 0), **kwargs):
        super().__init__(*args, padding=0, **kwargs)
        self.crop = tuple(int(c) for c in crop)

    def forward(self, x):
        out = super().forward(x)
        t, b, l, r = self.crop
        return out[:, :, t:out.shape[2] - b, l:out.shape[3] - r]


class SelfAttention(nn.Module):
    """Seed 004's Self_Attention (softmax over dim -2, returns (out, attention_map))."""

    def __init__(self, in_dim):
        super().__init__()
        self.query_conv = nn.Conv2d(in_dim, in_dim // 8, 1)
        self.key_conv = nn.Conv2d(in_dim, in_dim // 8, 1)
        self.value_conv = nn.Conv2d(in_dim, in_dim, 1)
        self.softmax = nn.Softmax(dim=-2)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        b, c, h, w = x.shape
        proj_query = self.query_conv(x).view(b, -1, h * w).permute(0, 2, 1)
        proj_key = self.key_conv(x).view(b, -1, h * w)
        s = torch.bmm(proj_query, proj_key)
        attention_map_t = self.softmax(s)
        attention_map = attention_map_t.permute(0, 2, 1)
        proj_value = self.value_conv(x).view(b, -1, h * w)
        o = torch.bmm(proj_value, attention_map.permute(0, 2, 1)).view(b, c, h, w)
        return x + self.gamma * o, attention_map


def _spectral(layer, spectral, sn_iterations):
    return nn.utils.spectral_norm(layer, n_power_iterations=sn_iterations) if spectral else layer


def _bn(channels, momentum=0.1, eps=1e-5, num_classes=0):
    if num_classes:
        return ConditionalBatchNorm2d(channels, num_classes, momentum=momentum, eps=eps)
    return nn.BatchNorm2d(channels, eps=eps, momentum=momentum)


class ConditionalBatchNorm2d(nn.Module):
    """BatchNorm2d without affine, then ``class_scale[y] * x + class_shift[y]`` per channel."""

    def __init__(self, channels, num_classes, momentum=0.1, eps=1e-5):
        super().__init__()
        self.norm = nn.BatchNorm2d(channels, eps=eps, momentum=momentum, affine=False)
        self.class_scale = nn.Parameter(torch.ones(num_classes, channels))
        self.class_shift = nn.Parameter(torch.zeros(num_classes, channels))

    def forward(self, x, y):
        return self.norm(x) * self.class_scale[y][:, :, None, None] + self.class_shift[y][:, :, None, None]


def _norm(layer, x, y):
    return layer(x) if y is None else layer(x, y)


def _projection(num_classes, features):
    return nn.Embedding(num_classes, features) if num_classes else None


def _project(logit, projection, features, y):
    """The projection discriminator's logit: psi(phi) + <embed(y), flatten(phi)>."""
    if projection is None:
        return logit
    return logit + (projection(y) * features.reshape(features.shape[0], -1)).sum(1, keepdim=True)


def _attention(module, attention_at, channels_at):
    for size, channels in channels_at.items():
        setattr(module, f"attn{size}", SelfAttention(channels) if size in attention_at else None)


def _attend(block, x, maps):
    if block is None:
        return x, maps
    x, m = block(x)
    return x, maps + (m,)


class DCGAN64Generator(nn.Module):
    """Seed 004's G (and SAGAN's with spectral=True and attention at 16 and 32)."""

    def __init__(self, z_dim=20, channels=1, spectral=False, attention_at=(), sn_iterations=1, num_classes=0):
        super().__init__()
        sn = (spectral, sn_iterations)
        self.convt1 = _spectral(nn.ConvTranspose2d(z_dim, 512, 4, 1, 0), *sn)
        self.bn1 = _bn(512, num_classes=num_classes)
        self.convt2 = _spectral(nn.ConvTranspose2d(512, 256, 4, 2, 1), *sn)
        self.bn2 = _bn(256, num_classes=num_classes)
        self.convt3 = _spectral(nn.ConvTranspose2d(256, 128, 4, 2, 1), *sn)
        self.bn3 = _bn(128, num_classes=num_classes)
        self.convt4 = _spectral(nn.ConvTranspose2d(128, 64, 4, 2, 1), *sn)
        self.bn4 = _bn(64, num_classes=num_classes)
        self.convt5 = nn.ConvTranspose2d(64, channels, 4, 2, 1)
        _attention(self, attention_at, {4: 512, 8: 256, 16: 128, 32: 64})
        self.has_attention = bool(attention_at)

    def forward(self, z, y=None):
        maps = ()
        x = z.reshape(z.shape[0], -1, 1, 1)
        x, maps = _attend(self.attn4, F.relu(_norm(self.bn1, self.convt1(x), y)), maps)
        x, maps = _attend(self.attn8, F.relu(_norm(self.bn2, self.convt2(x), y)), maps)
        x, maps = _attend(self.attn16, F.relu(_norm(self.bn3, self.convt3(x), y)), maps)
        x, maps = _attend(self.attn32, F.relu(_norm(self.bn4, self.convt4(x), y)), maps)
        x = torch.tanh(self.convt5(x))
        return (x,) + maps if self.has_attention else x


class DCGAN64Discriminator(nn.Module):
    """Seed 004's D (and SAGAN's with spectral=True and attention at 8 and 4)."""

    def __init__(self, channels=1, slope=0.1, spectral=False, attention_at=(), sn_iterations=1, num_classes=0):
        super().__init__()
        sn = (spectral, sn_iterations)
        self.projection = _projection(num_classes, 512 * 4 * 4)
        self.conv1 = _spectral(nn.Conv2d(channels, 64, 4, 2, 1), *sn)
        self.conv2 = _spectral(nn.Conv2d(64, 128, 4, 2, 1), *sn)
        self.conv3 = _spectral(nn.Conv2d(128, 256, 4, 2, 1), *sn)
        self.conv4 = _spectral(nn.Conv2d(256, 512, 4, 2, 1), *sn)
        self.conv5 = nn.Conv2d(512, 1, 4, 1, 0)
        self.slope = slope
        _attention(self, attention_at, {32: 64, 16: 128, 8: 256, 4: 512})
        self.has_attention = bool(attention_at)

    def forward(self, x, y=None):
        maps = ()
        x, maps = _attend(self.attn32, F.leaky_relu(self.conv1(x), self.slope), maps)
        x, maps = _attend(self.attn16, F.leaky_relu(self.conv2(x), self.slope), maps)
        x, maps = _attend(self.attn8, F.leaky_relu(self.conv3(x), self.slope), maps)
        x, maps = _attend(self.attn4, F.leaky_relu(self.conv4(x), self.slope), maps)
        x = _project(self.conv5(x).reshape(x.shape[0], 1), self.projection, x, y)
        return (x,) + maps if self.has_attention else x


class DCGAN8Generator(nn.Module):
    """Seed 000's G: ConvT k3, k3, k4 (1 -> 3 -> 5 -> 8), ReLU, ReLU, tanh."""

    def __init__(self, z_dim=64, num_classes=0, class_dim=16):
        super().__init__()
        self.convt1 = nn.ConvTranspose2d(z_dim + (class_dim if num_classes else 0), 64, 3)
        self.convt2 = nn.ConvTranspose2d(64, 32, 3)
        self.convt3 = nn.ConvTranspose2d(32, 1, 4)
        self.class_embed = nn.Embedding(num_classes, class_dim) if num_classes else None

    def forward(self, z, y=None):
        if y is not None:
            z = torch.cat([z, self.class_embed(y)], 1)
        x = F.relu(self.convt1(z.reshape(z.shape[0], -1, 1, 1)))
        x = F.relu(self.convt2(x))
        return torch.tanh(self.convt3(x))


class DCGAN8Discriminator(nn.Module):
    """Seed 000's D: Conv k4, k3, k3 (8 -> 5 -> 3 -> 1), LeakyReLU 0.2, sigmoid."""

    def __init__(self, num_classes=0):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 4)
        self.conv2 = nn.Conv2d(16, 32, 3)
        self.conv3 = nn.Conv2d(32, 1, 3)
        self.projection = _projection(num_classes, 32 * 3 * 3)

    def forward(self, x, y=None):
        x = F.leaky_relu(self.conv1(x), 0.2)
        x = F.leaky_relu(self.conv2(x), 0.2)
        return torch.sigmoid(_project(self.conv3(x).reshape(x.shape[0], 1), self.projection, x, y))


class DCGAN28Generator(nn.Module):
    """Seed 002's G: Dense to 256x4x4, ReLU; ConvT SAME 4 -> 7, BN, LReLU; -> 14, BN, LReLU; -> 28, tanh."""

    def __init__(self, z_dim=100, slope=0.2, num_classes=0):
        super().__init__()
        self.dense = nn.Linear(z_dim, 256 * 4 * 4)
        self.convt1 = CropConvTranspose2d(256, 128, 4, 2, crop=(1, 2, 1, 2))
        self.bn1 = _bn(128, num_classes=num_classes)
        self.convt2 = nn.ConvTranspose2d(128, 64, 4, 2, 1)
        self.bn2 = _bn(64, num_classes=num_classes)
        self.convt3 = nn.ConvTranspose2d(64, 1, 4, 2, 1)
        self.slope = slope

    def forward(self, z, y=None):
        x = F.relu(self.dense(z)).reshape(z.shape[0], 256, 4, 4)
        x = F.leaky_relu(_norm(self.bn1, self.convt1(x), y), self.slope)
        x = F.leaky_relu(_norm(self.bn2, self.convt2(x), y), self.slope)
        return torch.tanh(self.convt3(x))


class DCGAN28Discriminator(nn.Module):
    """Seed 002's D: SAME convs k4 s2 28 -> 14 -> 7 -> 4 with LReLU 0.2, Dense to one logit."""

    def __init__(self, slope=0.2, num_classes=0):
        super().__init__()
        self.projection = _projection(num_classes, 256 * 4 * 4)
        self.conv1 = SameConv2d(1, 64, 4, 2)
        self.conv2 = SameConv2d(64, 128, 4, 2)
        self.conv3 = SameConv2d(128, 256, 4, 2)
        self.dense = nn.Linear(256 * 4 * 4, 1)
        self.slope = slope

    def forward(self, x, y=None):
        x = F.leaky_relu(self.conv1(x), self.slope)
        x = F.leaky_relu(self.conv2(x), self.slope)
        x = F.leaky_relu(self.conv3(x), self.slope)
        return _project(self.dense(x.reshape(x.shape[0], -1)), self.projection, x, y)


# Keras BatchNormalization(momentum=0.8, epsilon=1e-3): torch's momentum weighs the batch term.
_KERAS_BN = dict(momentum=0.2, eps=1e-3)


class DCGAN128RGBGenerator(nn.Module):
    """Seed 001's G: Dense to 128x32x32, ReLU; BN, up 2x, conv 128 SAME, ReLU; BN, up, conv 64, ReLU; BN, conv 3, tanh."""

    def __init__(self, z_dim=100, num_classes=0):
        super().__init__()
        self.dense = nn.Linear(z_dim, 128 * 32 * 32)
        self.bn1 = _bn(128, **_KERAS_BN, num_classes=num_classes)
        self.conv1 = SameConv2d(128, 128, 3, 1)
        self.bn2 = _bn(128, **_KERAS_BN, num_classes=num_classes)
        self.conv2 = SameConv2d(128, 64, 3, 1)
        self.bn3 = _bn(64, **_KERAS_BN, num_classes=num_classes)
        self.conv3 = SameConv2d(64, 3, 3, 1)
        self.up = nn.Upsample(scale_factor=2, mode="nearest")

    def forward(self, z, y=None):
        x = F.relu(self.dense(z)).reshape(z.shape[0], 128, 32, 32)
        x = F.relu(self.conv1(self.up(_norm(self.bn1, x, y))))
        x = F.relu(self.conv2(self.up(_norm(self.bn2, x, y))))
        return torch.tanh(self.conv3(_norm(self.bn3, x, y)))


class DCGAN128RGBDiscriminator(nn.Module):
    """Seed 001's D: SAME convs with LReLU 0.2 and dropout, a right/bottom zero pad after the second,
    BN after the second and third, Dense, sigmoid."""

    def __init__(self, dropout=0.25, slope=0.2, num_classes=0):
        super().__init__()
        self.projection = _projection(num_classes, 256 * 17 * 17)
        self.conv1 = SameConv2d(3, 32, 3, 2)
        self.conv2 = SameConv2d(32, 64, 3, 2)
        self.pad2 = nn.ZeroPad2d((0, 1, 0, 1))  # (left, right, top, bottom)
        self.bn2 = _bn(64, **_KERAS_BN)
        self.conv3 = SameConv2d(64, 128, 3, 2)
        self.bn3 = _bn(128, **_KERAS_BN)
        self.conv4 = SameConv2d(128, 256, 3, 1)
        self.dense = nn.Linear(256 * 17 * 17, 1)
        self.dropout = nn.Dropout(dropout)
        self.slope = slope

    def forward(self, x, y=None):
        x = self.dropout(F.leaky_relu(self.conv1(x), self.slope))
        x = self.bn2(self.dropout(F.leaky_relu(self.pad2(self.conv2(x)), self.slope)))
        x = self.bn3(self.dropout(F.leaky_relu(self.conv3(x), self.slope)))
        x = self.dropout(F.leaky_relu(self.conv4(x), self.slope))
        return torch.sigmoid(_project(self.dense(x.reshape(x.shape[0], -1)), self.projection, x, y))


class MLPGenerator(nn.Module):
    """Seed 003's G: Dense, ReLU, BatchNorm1d (x3), Dense, tanh, reshape."""

    def __init__(self, z_dim=128, image_shape=(1, 28, 28)):
        super().__init__()
        self.image_shape = tuple(image_shape)
        self.dense1 = nn.Linear(z_dim, 256)
        self.bn1 = nn.BatchNorm1d(256)
        self.dense2 = nn.Linear(256, 512)
        self.bn2 = nn.BatchNorm1d(512)
        self.dense3 = nn.Linear(512, 1024)
        self.bn3 = nn.BatchNorm1d(1024)
        self.dense4 = nn.Linear(1024, int(np.prod(self.image_shape)))

    def forward(self, z):
        x = self.bn1(F.relu(self.dense1(z)))
        x = self.bn2(F.relu(self.dense2(x)))
        x = self.bn3(F.relu(self.dense3(x)))
        return torch.tanh(self.dense4(x)).reshape((z.shape[0],) + self.image_shape)


class MLPDiscriminator(nn.Module):
    """Seed 003's D: Dense 512, LReLU 0.2, Dense 256, LReLU 0.2, Dense 1, sigmoid."""

    def __init__(self, image_shape=(1, 28, 28)):
        super().__init__()
        self.dense1 = nn.Linear(int(np.prod(image_shape)), 512)
        self.dense2 = nn.Linear(512, 256)
        self.dense3 = nn.Linear(256, 1)

    def forward(self, x):
        x = F.leaky_relu(self.dense1(x.reshape(x.shape[0], -1)), 0.2)
        x = F.leaky_relu(self.dense2(x), 0.2)
        return torch.sigmoid(self.dense3(x))


FAMILIES = {
    "mlp": (MLPGenerator, MLPDiscriminator),
    "dcgan_digits8": (DCGAN8Generator, DCGAN8Discriminator),
    "dcgan_mnist28": (DCGAN28Generator, DCGAN28Discriminator),
    "dcgan64": (DCGAN64Generator, DCGAN64Discriminator),
    "dcgan128_rgb": (DCGAN128RGBGenerator, DCGAN128RGBDiscriminator),
}


def build(preset):
    """(G, D) torch modules for ``preset`` (torch's default init, train mode)."""
    from ms_gan.models.registry import network_kwargs

    g_cls, d_cls = FAMILIES[preset.family]
    return g_cls(**network_kwargs(preset, "G")), d_cls(**network_kwargs(preset, "D"))


def primary(out):
    return out[0] if isinstance(out, tuple) else out


def randomize(net, generator, bn_stats=True, scale=0.5):
    """Give every tensor of ``net`` non-trivial random values (weights, BN affine and running
    stats, attention gamma, spectral-norm u/v) so parity tests exercise every mapping.

    Weights are N(0, scale^2 / fan_in): ``scale`` 0.5 keeps pre-tanh values well inside
    (-3, 3), where MindSpore's CPU tanh is accurate to 1e-6 (it errs by up to 1e-4 near |x| = 5)."""
    with torch.no_grad():
        for name, t in list(net.named_parameters()) + list(net.named_buffers()):
            if name.endswith("num_batches_tracked"):
                continue
            if name.endswith("running_var"):
                if bn_stats:
                    t.copy_(torch.rand(t.shape, generator=generator) * 1.5 + 0.5)
            elif name.endswith("running_mean"):
                if bn_stats:
                    t.copy_(torch.randn(t.shape, generator=generator) * 0.2)
            elif name.endswith(("weight_u", "weight_v")):
                v = torch.randn(t.shape, generator=generator)
                t.copy_(v / v.norm())
            elif name.endswith("gamma"):
                t.fill_(0.3)
            elif _is_bn(net, name):
                t.copy_(1.0 + 0.1 * torch.randn(t.shape, generator=generator) if name.endswith("weight")
                        else 0.1 * torch.randn(t.shape, generator=generator))
            else:
                module = net.get_submodule(name.rsplit(".", 1)[0]) if "." in name else net
                if isinstance(module, nn.ConvTranspose2d) and t.ndim == 4:
                    # each output sums in_ch * k*k / stride^2 inputs
                    fan_in = t.shape[0] * t.shape[2] * t.shape[3] / (module.stride[0] * module.stride[1])
                else:
                    fan_in = t[0].numel() if t.ndim > 1 else t.numel()
                t.copy_(torch.randn(t.shape, generator=generator) * scale / math.sqrt(max(fan_in, 1)))
        # Spectral norm: u, v consistent with W (one power iteration), as after a training forward,
        # so eval-mode sigma = u^T W v is the largest singular value, not a random small number.
        for name, module in net.named_modules():
            if hasattr(module, "weight_orig") and hasattr(module, "weight_u"):
                dim = 1 if isinstance(module, nn.ConvTranspose2d) else 0
                w = module.weight_orig.detach().movedim(dim, 0).reshape(module.weight_orig.shape[dim], -1)
                v = F.normalize(w.t() @ module.weight_u, dim=0)
                module.weight_u.copy_(F.normalize(w @ v, dim=0))
                module.weight_v.copy_(v)
    return net


def _is_bn(net, name):
    module = net.get_submodule(name.rsplit(".", 1)[0])
    return isinstance(module, nn.modules.batchnorm._BatchNorm)


# ---------------------------------------------------------------------------- training recipe


class TFAdam(torch.optim.Optimizer):
    """Adam with epsilon outside the bias correction (TensorFlow/Keras):
    p -= lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)."""

    def __init__(self, params, lr, betas, eps):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps))
        self.t = 0

    @torch.no_grad()
    def step(self):
        self.t += 1
        for group in self.param_groups:
            b1, b2 = group["betas"]
            lr_t = group["lr"] * math.sqrt(1.0 - b2 ** self.t) / (1.0 - b1 ** self.t)
            for p in group["params"]:
                if p.grad is None:
                    continue
                st = self.state[p]
                if not st:
                    st["m"] = torch.zeros_like(p)
                    st["v"] = torch.zeros_like(p)
                st["m"].mul_(b1).add_((1.0 - b1) * p.grad)
                st["v"].mul_(b2).add_((1.0 - b2) * p.grad * p.grad)
                p.sub_(lr_t * st["m"] / (st["v"].sqrt() + group["eps"]))


def make_adam(params, lr, b1, b2, eps, mode):
    """torch.optim.Adam for PyTorch recipes, :class:`TFAdam` for TensorFlow/Keras ones."""
    if mode == "torch":
        return torch.optim.Adam(params, lr=lr, betas=(b1, b2), eps=eps)
    return TFAdam(params, lr=lr, betas=(b1, b2), eps=eps)


def _d_terms(loss):
    if loss == "hinge":
        return (lambda o: F.relu(1.0 - o).mean(), lambda o: F.relu(1.0 + o).mean(), lambda o: -o.mean())
    fn = F.binary_cross_entropy if loss == "bce" else F.binary_cross_entropy_with_logits
    return (lambda o: fn(o, torch.ones_like(o)), lambda o: fn(o, torch.zeros_like(o)),
            lambda o: fn(o, torch.ones_like(o)))


class Recipe:
    """One training iteration of a preset, in PyTorch: its D update(s) and G update in step order.

    Args:
        preset: the Preset.
        G, D: torch modules from :func:`build` (set to train mode here).
    """

    def __init__(self, preset, G, D):
        self.p, self.G, self.D = preset, G, D
        G.train()
        D.train()
        self.opt_g = make_adam(G.parameters(), preset.lr_g, preset.beta1_g, preset.beta2_g, preset.adam_eps,
                               preset.adam_eps_mode)
        self.opt_d = make_adam(D.parameters(), preset.lr_d, preset.beta1_d, preset.beta2_d, preset.adam_eps,
                               preset.adam_eps_mode)
        self.d_real, self.d_fake, self.g_term = _d_terms(preset.loss)
        named = dict(D.named_parameters())
        self.penalty_params = [named[n] for n in preset.d_l2_params]

    def penalty(self):
        if not self.p.d_l2_coef:
            return 0.0
        return self.p.d_l2_coef * sum((w * w).sum() / 2.0 for w in self.penalty_params)

    def generate(self, z, y=None):
        """D's fakes: G without gradient, in eval mode for recipes that make fakes with predict()."""
        with torch.no_grad():
            if self.p.fake_for_d_eval_mode:
                self.G.eval()
                fake = primary(self._g(z, y))
                self.G.train()
            else:
                fake = primary(self._g(z, y))
        return fake

    def _g(self, z, y):
        return self.G(z) if y is None else self.G(z, y)

    def _d(self, x, y):
        return primary(self.D(x) if y is None else self.D(x, y))

    def _d_update(self, loss):
        self.opt_d.zero_grad()
        loss.backward()
        self.opt_d.step()

    def iteration(self, real, noises, classes=None):
        """Run the preset's step order on ``real`` with the latent batches ``noises``, consumed in
        the order the trainer draws them (one per d/d_fake token, one per g token).

        ``classes`` (conditional models): (real labels, [labels of each fake batch], G's labels).
        Returns a list of (token, loss value(s)) like ms_gan's step outputs.
        """
        noises = list(noises)
        y_real, y_fakes, y_g = (None, [], None) if classes is None else (
            _long(classes[0]), [_long(y) for y in classes[1]], _long(classes[2]))
        out = []
        k = 0
        for token in self.p.steps:
            z = None if token == "d_real" else torch.as_tensor(np.asarray(noises.pop(0)))
            if token == "g":
                fake = primary(self._g(z, y_g))
                loss = self.g_term(self._d(fake, y_g))
                if self.p.mode_seeking:   # MSGAN: pairs (i, i + n/2) of G's batch (ms_gan.train.steps)
                    h = z.shape[0] // 2
                    ratio = (fake[:h] - fake[h:2 * h]).abs().mean() / (z[:h] - z[h:2 * h]).abs().mean()
                    loss = loss + self.p.mode_seeking / (ratio + 1e-5)
                self.opt_g.zero_grad()
                loss.backward()
                self.opt_g.step()
                out.append(("g", loss.item()))
                continue
            if token == "d_real":
                o = self._d(real, y_real)
                lr_ = self.d_real(o)
                total = lr_ + self.penalty()
                self._d_update(total)
                out.append((token, total.item(), lr_.item(), 0.0))
                continue
            y_fake = y_fakes[k] if y_fakes else None
            k += 1
            fake = self.generate(z, y_fake)
            if token == "d":
                o_real = self._d(real, y_real)
                o_fake = self._d(fake, y_fake)
                lr_, lf_ = self.d_real(o_real), self.d_fake(o_fake)
                total = lr_ + lf_ + self.penalty()
                self._d_update(total)
                out.append((token, total.item(), lr_.item(), lf_.item()))
            else:  # d_fake
                lf_ = self.d_fake(self._d(fake, y_fake))
                total = lf_ + self.penalty()
                self._d_update(total)
                out.append((token, total.item(), 0.0, lf_.item()))
        return out


def _long(labels):
    return torch.as_tensor(np.asarray(labels, dtype=np.int64))


def noise_plan(preset, batch, rng):
    """The latent batches one iteration draws, in the trainer's order (float32 NumPy)."""
    from ms_gan.train.trainer import sample_noise

    zs = []
    for token in preset.steps:
        if token == "g":
            zs.append(sample_noise(rng, batch * preset.g_batch_mult, preset))
        elif token in ("d", "d_fake"):
            zs.append(sample_noise(rng, batch, preset))
    return zs
