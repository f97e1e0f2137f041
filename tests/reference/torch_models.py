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

Module paths mirror ms_gan's (``stem.0``, ``body.layers.<i>.<j>``, ``body.attentions.<k>``,
``head``; MLP: ``model.<j>``) so the state-dict names map mechanically onto MindSpore's.
The stages are read from the preset's token lists (the same data the MindSpore models
read), but every layer's semantics here is plain PyTorch.
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


def _act(name, slope):
    if name == "relu":
        return nn.ReLU()
    if name == "lrelu":
        return nn.LeakyReLU(slope)
    if name == "tanh":
        return nn.Tanh()
    if name == "sigmoid":
        return nn.Sigmoid()
    raise ValueError(name)


def _layer(token, ch, p, slope):
    """(module, out_channels) for one stage token of the preset."""
    if isinstance(token, str):
        if token == "bn":
            return nn.BatchNorm2d(ch, eps=p.bn_eps, momentum=1.0 - p.bn_momentum), ch
        if token == "dropout":
            return nn.Dropout(p.dropout), ch
        if token == "up2":
            return nn.Upsample(scale_factor=2, mode="nearest"), ch
        return _act(token, slope), ch
    kind = token[0]
    if kind == "zpad":
        return nn.ZeroPad2d(tuple(token[1:])), ch  # (left, right, top, bottom)
    _, out, k, s, pad = token
    base = kind[3:] if kind.startswith("sn_") else kind
    if base == "conv":
        layer = SameConv2d(ch, out, k, s) if pad == "same" else nn.Conv2d(ch, out, k, s, padding=pad)
    elif isinstance(pad, (tuple, list)):
        layer = CropConvTranspose2d(ch, out, k, s, crop=pad)
    else:
        layer = nn.ConvTranspose2d(ch, out, k, s, padding=pad)
    if kind.startswith("sn_"):
        layer = nn.utils.spectral_norm(layer, n_power_iterations=p.sn_iterations)
    return layer, out


class Stack(nn.Module):
    """Stages (``layers``) with self-attention (``attentions``) after the listed stages."""

    def __init__(self, p, stages, ch, slope, attention_after):
        super().__init__()
        layers, attentions, self.slots = [], [], []
        for i, stage in enumerate(stages, start=1):
            mods = []
            for token in stage:
                mod, ch = _layer(token, ch, p, slope)
                mods.append(mod)
            layers.append(nn.Sequential(*mods))
            if i in attention_after:
                self.slots.append(len(attentions))
                attentions.append(SelfAttention(ch))
            else:
                self.slots.append(-1)
        self.layers = nn.ModuleList(layers)
        self.attentions = nn.ModuleList(attentions)
        self.out_channels = ch

    def forward(self, x):
        maps = ()
        for layer, slot in zip(self.layers, self.slots):
            x = layer(x)
            if slot >= 0:
                x, m = self.attentions[slot](x)
                maps += (m,)
        return x, maps


class ConvG(nn.Module):
    """z (N, z_dim) -> image, plus attention maps for SAGAN."""

    def __init__(self, p):
        super().__init__()
        if p.g_stem[0] == "dense":
            c, s, _ = p.g_stem[1:]
            self.stem = nn.Sequential(nn.Linear(p.z_dim, c * s * s), _act(p.g_stem_act, p.g_slope))
            self.shape = (c, s, s)
        else:
            self.stem = None
            self.shape = (p.z_dim, 1, 1)
        self.body = Stack(p, p.g_stages, self.shape[0], p.g_slope, p.g_attention_after)

    def forward(self, z):
        if self.stem is not None:
            z = self.stem(z)
        x, maps = self.body(z.reshape((z.shape[0],) + self.shape))
        return (x,) + maps if maps else x


class ConvD(nn.Module):
    """image -> (N, 1) probability or logit, plus attention maps for SAGAN."""

    def __init__(self, p):
        super().__init__()
        self.body = Stack(p, p.d_stages, p.channels, p.d_slope, p.d_attention_after)
        if p.d_head == "dense":
            size = p.image_size
            for stage in p.d_stages:
                for token in stage:
                    if isinstance(token, tuple) and token[0] == "conv":
                        size = -(-size // token[3]) if token[4] == "same" else \
                            (size + 2 * token[4] - token[2]) // token[3] + 1
                    elif isinstance(token, tuple) and token[0] == "zpad":
                        size += token[3] + token[4]
            self.head = nn.Linear(self.body.out_channels * size * size, 1)
        else:
            self.head = None
        self.final = _act(p.d_final, 0) if p.d_final else None

    def forward(self, x):
        x, maps = self.body(x)
        x = x.reshape(x.shape[0], -1)
        if self.head is not None:
            x = self.head(x)
        if self.final is not None:
            x = self.final(x)
        return (x,) + maps if maps else x


class MLPG(nn.Module):
    """Seed 003's G: Dense, ReLU, BatchNorm1d (x3), Dense, Tanh, reshape."""

    def __init__(self, p):
        super().__init__()
        dims = (p.z_dim,) + tuple(p.g_hidden)
        mods = []
        for a, b in zip(dims[:-1], dims[1:]):
            mods += [nn.Linear(a, b), nn.ReLU(), nn.BatchNorm1d(b, eps=p.bn_eps, momentum=1.0 - p.bn_momentum)]
        mods += [nn.Linear(dims[-1], p.channels * p.image_size ** 2), nn.Tanh()]
        self.model = nn.Sequential(*mods)
        self.shape = (p.channels, p.image_size, p.image_size)

    def forward(self, z):
        return self.model(z).reshape((z.shape[0],) + self.shape)


class MLPD(nn.Module):
    """Seed 003's D: Dense 512, LReLU 0.2, Dense 256, LReLU 0.2, Dense 1, Sigmoid."""

    def __init__(self, p):
        super().__init__()
        dims = (p.channels * p.image_size ** 2,) + tuple(p.d_hidden)
        mods = []
        for a, b in zip(dims[:-1], dims[1:]):
            mods += [nn.Linear(a, b), nn.LeakyReLU(0.2)]
        mods += [nn.Linear(dims[-1], 1), nn.Sigmoid()]
        self.model = nn.Sequential(*mods)

    def forward(self, x):
        return self.model(x.reshape(x.shape[0], -1))


def build(preset):
    """(G, D) torch modules for ``preset`` (torch's default init, train mode)."""
    if preset.family == "mlp":
        return MLPG(preset), MLPD(preset)
    return ConvG(preset), ConvD(preset)


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

    def generate(self, z):
        """D's fakes: G without gradient, in eval mode for recipes that make fakes with predict()."""
        with torch.no_grad():
            if self.p.fake_for_d_eval_mode:
                self.G.eval()
                fake = primary(self.G(z))
                self.G.train()
            else:
                fake = primary(self.G(z))
        return fake

    def _d_update(self, loss):
        self.opt_d.zero_grad()
        loss.backward()
        self.opt_d.step()

    def iteration(self, real, noises):
        """Run the preset's step order on ``real`` with the latent batches ``noises``, consumed in
        the order the trainer draws them (one per d/d_fake token, one per g token).

        Returns a list of (token, loss value(s)) like ms_gan's step outputs.
        """
        noises = list(noises)
        out = []
        for token in self.p.steps:
            z = None if token == "d_real" else torch.as_tensor(np.asarray(noises.pop(0)))
            if token == "g":
                d_out = primary(self.D(primary(self.G(z))))
                loss = self.g_term(d_out)
                self.opt_g.zero_grad()
                loss.backward()
                self.opt_g.step()
                out.append(("g", loss.item()))
                continue
            if token == "d_real":
                o = primary(self.D(real))
                lr_ = self.d_real(o)
                total = lr_ + self.penalty()
                self._d_update(total)
                out.append((token, total.item(), lr_.item(), 0.0))
                continue
            fake = self.generate(z)
            if token == "d":
                o_real = primary(self.D(real))
                o_fake = primary(self.D(fake))
                lr_, lf_ = self.d_real(o_real), self.d_fake(o_fake)
                total = lr_ + lf_ + self.penalty()
                self._d_update(total)
                out.append((token, total.item(), lr_.item(), lf_.item()))
            else:  # d_fake
                lf_ = self.d_fake(primary(self.D(fake)))
                total = lf_ + self.penalty()
                self._d_update(total)
                out.append((token, total.item(), 0.0, lf_.item()))
        return out


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
