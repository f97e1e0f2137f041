"""Generators: latent noise, G loaded from a checkpoint or an exported MindIR, images out.

``load_network`` accepts a checkpoint file or a run directory (its latest checkpoint),
rebuilds the preset's G (or D) with the overrides it was trained with and loads its
weights; G alone is enough (D and optimizer states are ignored). ``load_mindir`` loads an
exported generator with its JSON sidecar (written by :mod:`ms_gan.export`) and checks
that the two belong together.
"""
import os

import numpy as np

from ms_gan import checkpoint as ckpt_io
from ms_gan.errors import UserError

SIDECAR_FORMAT = "ms_gan-export-1"
# Sample/interpolate refuse more images than this: a 10^9 request asked for ~477 GiB
# (issue 12); a grid of 100,000 digits is already a 2,800-pixel-wide picture.
MAX_IMAGES = 100_000


def sample_noise(rng, n, preset):
    """``n`` latent vectors (n, z_dim) float32 from the preset's distribution."""
    if preset.noise == "uniform":
        return rng.uniform(-1.0, 1.0, (n, preset.z_dim)).astype(np.float32)
    return rng.standard_normal((n, preset.z_dim)).astype(np.float32)


def noise(preset, n, seed):
    """``n`` latent vectors from the preset's distribution with a fixed seed."""
    return sample_noise(np.random.default_rng(seed), n, preset)


# ---------------------------------------------------------------------------- classes (conditional models)


def balanced_classes(preset, n):
    """Class labels int32 (n,) cycling 0, 1, ..., K-1 (every class equally often); None if unconditional."""
    if not preset.num_classes:
        return None
    return (np.arange(n) % preset.num_classes).astype(np.int32)


def grid_classes(preset):
    """Labels of the training grid (grid_rows x grid_cols): row r shows class r mod K."""
    rows = np.arange(preset.grid_rows * preset.grid_cols) // preset.grid_cols
    return (rows % preset.num_classes).astype(np.int32)


def check_class(preset, k, flag="--class"):
    """Refuse ``k`` for an unconditional model or outside 0..K-1, before any image is made."""
    if not preset.num_classes:
        raise UserError(f"{flag}: {preset.name} is not a class-conditional model (train one with --conditional)")
    if not 0 <= int(k) < preset.num_classes:
        raise UserError(f"{flag} {k} is out of range: this model knows classes 0..{preset.num_classes - 1}")
    return int(k)


def check_count(n, what="--n"):
    """Refuse image counts above :data:`MAX_IMAGES` before anything is allocated."""
    if n > MAX_IMAGES:
        raise UserError(f"{what} {n} is more than {MAX_IMAGES:,} images (memory grows with n and the grid would be "
                        f"unreadable); make several smaller sets with different --seed values")


def load_noise(path, preset):
    """Latent vectors from a .npy file, checked against the preset's z_dim."""
    try:
        z = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise UserError(f"noise file {path!r} does not exist") from None
    except Exception as exc:
        raise UserError(f"cannot read noise file {path}: {exc}") from None
    if not np.issubdtype(np.asarray(z).dtype, np.number):
        raise UserError(f"noise file {path} holds {z.dtype} values; it needs numbers (N, {preset.z_dim})")
    z = np.asarray(z, dtype=np.float32)
    if z.ndim == 4 and z.shape[2:] == (1, 1):
        z = z.reshape(z.shape[0], -1)
    if z.ndim != 2 or z.shape[1] != preset.z_dim or z.shape[0] < 1:
        raise UserError(f"noise file {path} has shape {z.shape}; preset {preset.name} needs (N, {preset.z_dim}) "
                        f"with N >= 1")
    check_count(z.shape[0], f"noise file {path} holds")
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


# ---------------------------------------------------------------------------- from checkpoints


def check_one_source(ckpt, mindir):
    """A generator comes from exactly one of a checkpoint and an exported MindIR."""
    if (ckpt is None) == (mindir is None):
        raise UserError("give exactly one of --ckpt (checkpoint or run directory) and --mindir (exported graph)")


def preset_from_meta(meta, path="checkpoint"):
    """The Preset a checkpoint was trained with (preset name plus its overrides)."""
    from ms_gan import presets

    if "preset" not in meta:
        raise UserError(f"{path} does not say which preset it belongs to")
    return presets.override(presets.get(meta["preset"]), **meta.get("overrides", {}))


def load_network(ckpt, net="g", use_ema=True, params_meta=None):
    """(preset, G or D in eval mode, meta, checkpoint path) from a checkpoint file or run directory.

    The one loader behind sample, interpolate, attention, export, convert and eval. When the
    checkpoint holds an EMA of G's weights (``train --ema``) and ``use_ema``, G gets the
    averaged weights; ``meta["used_ema"]`` says which were loaded. ``params_meta`` reuses an
    already read ``(params, meta)`` of the same file.
    """
    from ms_gan.models import build_discriminator, build_generator
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


# ---------------------------------------------------------------------------- from exported MindIR


def sidecar_path(path):
    """The JSON metadata file written next to an exported model."""
    return path + ".json"


def read_sidecar(path):
    """The metadata written next to an exported model; UserError when missing or foreign."""
    import json

    meta_path = sidecar_path(path)
    if not os.path.isfile(meta_path):
        raise UserError(f"{path} has no metadata file {meta_path}: export it with 'ms-gan export', "
                        f"which writes both")
    try:
        with open(meta_path) as f:
            meta = json.load(f)
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read {meta_path}: {' '.join(str(exc).split())}") from None
    if not isinstance(meta, dict) or meta.get("format") != SIDECAR_FORMAT:
        raise UserError(f"{meta_path} is not an ms_gan export description ({SIDECAR_FORMAT})")
    return meta


def load_mindir(path):
    """(callable G, preset) from an exported generator ``.mindir`` and its JSON sidecar.

    The callable is an ``nn.GraphCell`` over ``mindspore.load(path)``: it takes a
    float32 Tensor (N, z_dim) for any N (and int32 class labels (N,) for a conditional
    model) and returns images (N, C, H, W) in [-1, 1].
    The sidecar must describe this very file (its SHA-256) and the graph must map the
    sidecar preset's noise to that preset's image shape (one trial batch of 1).
    """
    import mindspore as ms
    from mindspore import nn

    from ms_gan import presets

    if path is None or not os.path.isfile(path):
        raise UserError(f"MindIR file {path!r} does not exist")
    if not str(path).lower().endswith(".mindir"):
        raise UserError(f"{path} is not a .mindir file (ONNX files run with onnxruntime, see the README)")
    meta = read_sidecar(path)
    if meta.get("net") != "g":
        raise UserError(f"{path} holds the discriminator; sampling needs a generator "
                        f"(ms-gan export --net g)")
    if meta.get("sha256") and meta["sha256"] != ckpt_io.file_sha256(path):
        raise UserError(f"{sidecar_path(path)} describes another file (its SHA-256 differs from {path}'s): "
                        f"export again, or keep each .mindir with its own .json")
    try:
        preset = presets.override(presets.get(meta["preset"]), **meta.get("overrides", {}))
    except KeyError:
        raise UserError(f"{sidecar_path(path)} names no preset") from None
    try:
        with ckpt_io.quiet_native_stderr():
            graph = ms.load(path)
    except Exception as exc:
        raise UserError(f"cannot load MindIR {path}: {' '.join(str(exc).split())}") from None
    G = nn.GraphCell(graph)
    G.set_train(False)
    expected = (1, preset.channels, preset.image_size, preset.image_size)
    try:
        with ckpt_io.quiet_native_stderr():
            trial = (ms.Tensor(noise(preset, 1, 0)),)
            if preset.num_classes:
                trial += (ms.Tensor(balanced_classes(preset, 1)),)
            shape = tuple(G(*trial).shape)
    except Exception:
        shape = None
    if shape != expected:
        raise UserError(f"{path} does not fit its metadata {sidecar_path(path)} (preset {preset.name}: noise "
                        f"(N, {preset.z_dim}) -> images {expected[1:]}); export again")
    return G, preset


# ---------------------------------------------------------------------------- images


def run_generator(G, z, batch_size=256, classes=None):
    """G's outputs for latent vectors ``z`` (N, z_dim): images (N, C, H, W) as float32 NumPy.

    ``classes`` (N,) int labels for a conditional G (None otherwise). Extra outputs (attention
    maps) are dropped. Runs in batches to bound memory.
    """
    import mindspore as ms

    from ms_gan.models import primary

    from ms_gan import interrupt

    chunks = []
    for start in range(0, len(z), batch_size):
        interrupt.check()
        inputs = (ms.Tensor(np.ascontiguousarray(z[start:start + batch_size], dtype=np.float32)),)
        if classes is not None:
            inputs += (ms.Tensor(np.ascontiguousarray(classes[start:start + batch_size], dtype=np.int32)),)
        out = G(*inputs)
        chunks.append(primary(out).asnumpy())
    return np.concatenate(chunks, axis=0)


def generate_images(G, preset, n, seed, batch_size=256, classes=None):
    """``n`` images (N, C, H, W) in [-1, 1] from G with the preset's noise of ``seed``; finite or UserError.

    A conditional G makes ``classes`` (default: every class equally often, :func:`balanced_classes`).
    """
    if classes is None:
        classes = balanced_classes(preset, n)
    images = run_generator(G, noise(preset, n, seed), batch_size=batch_size, classes=classes)
    if not np.all(np.isfinite(images)):
        raise UserError("the generator produced NaN or infinite values (diverged training?)")
    return images
