"""Generators from checkpoints, and latent-space utilities for sample/interpolate.

``load_generator`` accepts a checkpoint file or a run directory (its latest
checkpoint), rebuilds the preset's G with the overrides it was trained with and
loads its weights; G alone is enough (D and optimizer states are ignored).
"""
import numpy as np

from ms_gan.errors import UserError


def preset_from_meta(meta, path="checkpoint"):
    """The Preset a checkpoint was trained with (preset name plus its overrides)."""
    from ms_gan import presets

    if "preset" not in meta:
        raise UserError(f"{path} does not say which preset it belongs to")
    return presets.override(presets.get(meta["preset"]), **meta.get("overrides", {}))


def load_network(ckpt, net="g", use_ema=True, params_meta=None):
    """(preset, G or D in eval mode, meta, checkpoint path) from a checkpoint file or run directory.

    The one loader behind sample, interpolate, attention, export and eval. When the
    checkpoint holds an EMA of G's weights (``train --ema``) and ``use_ema``, G gets the
    averaged weights; ``meta["used_ema"]`` says which were loaded. ``params_meta`` reuses an
    already read ``(params, meta)`` of the same file.
    """
    from ms_gan.models import build_discriminator, build_generator
    from ms_gan.train import checkpoint as ckpt_io
    from ms_gan.train.ema import ema_values, has_ema

    path = ckpt_io.resolve(ckpt)
    params, meta = params_meta or ckpt_io.load(path)
    preset = preset_from_meta(meta, path)
    if net == "g":
        cell = build_generator(preset, seed=0)
        meta = dict(meta, used_ema=bool(use_ema and has_ema(params, cell)))
        values = ema_values(params, cell) if meta["used_ema"] else params
    else:
        if not any(name.startswith(preset.param_prefixes[1] + ".") for name in params):
            raise UserError(f"{path} holds no discriminator (a G-only checkpoint); export or evaluate G instead")
        cell = build_discriminator(preset, seed=0)
        values = params
    ckpt_io.assign([cell], values, path)
    cell.set_train(False)
    return preset, cell, meta, path


def load_generator(ckpt, use_ema=True):
    """(preset, G in eval mode, meta) from a checkpoint file or run directory."""
    preset, G, meta, _ = load_network(ckpt, "g", use_ema)
    return preset, G, meta


def run_generator(G, z, batch_size=256):
    """G's outputs for latent vectors ``z`` (N, z_dim): images (N, C, H, W) as float32 NumPy.

    Extra outputs (attention maps) are dropped. Runs in batches to bound memory.
    """
    import mindspore as ms

    from ms_gan.models import primary

    chunks = []
    for start in range(0, len(z), batch_size):
        out = G(ms.Tensor(np.ascontiguousarray(z[start:start + batch_size], dtype=np.float32)))
        chunks.append(primary(out).asnumpy())
    return np.concatenate(chunks, axis=0)


def noise(preset, n, seed):
    """``n`` latent vectors from the preset's distribution with a fixed seed."""
    from ms_gan.train.trainer import sample_noise

    return sample_noise(np.random.default_rng(seed), n, preset)


def load_noise(path, preset):
    """Latent vectors from a .npy file, checked against the preset's z_dim."""
    try:
        z = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise UserError(f"noise file {path!r} does not exist") from None
    except Exception as exc:
        raise UserError(f"cannot read noise file {path}: {exc}") from None
    z = np.asarray(z, dtype=np.float32)
    if z.ndim == 4 and z.shape[2:] == (1, 1):
        z = z.reshape(z.shape[0], -1)
    if z.ndim != 2 or z.shape[1] != preset.z_dim:
        raise UserError(f"noise file {path} has shape {z.shape}; preset {preset.name} needs (N, {preset.z_dim})")
    if not np.all(np.isfinite(z)):
        raise UserError(f"noise file {path} contains NaN or infinite values")
    return z


def interpolate(z0, z1, steps, slerp=False):
    """``steps`` evenly spaced points from z0 to z1 (both included); spherical if ``slerp``."""
    t = np.linspace(0.0, 1.0, steps)[:, None]
    if not slerp:
        return ((1.0 - t) * z0[None] + t * z1[None]).astype(np.float32)
    a = z0 / np.linalg.norm(z0)
    b = z1 / np.linalg.norm(z1)
    omega = np.arccos(np.clip(np.dot(a, b), -1.0, 1.0))
    if omega < 1e-6:
        return ((1.0 - t) * z0[None] + t * z1[None]).astype(np.float32)
    so = np.sin(omega)
    out = (np.sin((1.0 - t) * omega) / so) * z0[None] + (np.sin(t * omega) / so) * z1[None]
    # Endpoints exactly equal the inputs (sin terms give 1 and 0 only up to rounding).
    out[0], out[-1] = z0, z1
    return out.astype(np.float32)
