"""Checkpoints: everything a run needs to continue exactly, written atomically.

One ``.ckpt`` file (MindSpore's format, CRC-checked) holds G's and D's parameters
(BatchNorm moving statistics and spectral-norm vectors included), both optimizers'
states (moments and step), and metadata: the preset and its overrides, epoch,
batch-in-epoch and step counters, and the NumPy noise generator's state. It is written
to a temporary file in the same folder and renamed over the old one, so a kill at
any moment leaves the previous checkpoint intact.
"""
import json
import os

import numpy as np

from ms_gan.errors import UserError

FORMAT = "ms_gan-ckpt-1"
_META_KEYS = ("ms_gan_format", "ms_gan_meta")


def _entries(cells):
    entries = []
    for cell in cells:
        params = cell.state_parameters() if hasattr(cell, "state_parameters") else cell.get_parameters()
        for p in params:
            entries.append({"name": p.name, "data": p})
    return entries


def save(path, cells, meta):
    """Atomically write the parameters of ``cells`` and the JSON-able ``meta`` to ``path``."""
    import mindspore as ms

    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f".{os.path.basename(path)}.{os.getpid()}.tmp.ckpt")
    append = {"ms_gan_format": FORMAT, "ms_gan_meta": json.dumps(meta, sort_keys=True)}
    ms.save_checkpoint(_entries(cells), tmp, append_dict=append, crc_check=True)
    os.replace(tmp, path)
    return path


def file_sha256(path):
    """SHA-256 hex digest of a file (provenance of checkpoints, exports and classifiers)."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def resolve(path):
    """A checkpoint file, or a run directory meaning its latest checkpoint."""
    if path is None:
        raise UserError("no checkpoint given: pass --ckpt FILE.ckpt or a run directory")
    path = os.path.expanduser(str(path))
    if os.path.isdir(path):
        for candidate in (os.path.join(path, "checkpoints", "latest.ckpt"), os.path.join(path, "latest.ckpt")):
            if os.path.isfile(candidate):
                return candidate
        raise UserError(f"run directory {path!r} has no checkpoints/latest.ckpt yet")
    if not os.path.isfile(path):
        raise UserError(f"checkpoint {path!r} does not exist")
    return path


def load(path):
    """Read a checkpoint: returns (dict name -> Parameter, meta dict).

    Raises:
        UserError: the file is missing, corrupt (CRC or format) or not an ms_gan checkpoint.
    """
    import mindspore as ms

    path = resolve(path)
    try:
        params = ms.load_checkpoint(path, crc_check=True)
    except Exception as exc:  # MindSpore's CRC message wrongly blames permissions
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
        raise UserError(f"checkpoint {path} is corrupt or not a MindSpore checkpoint "
                        f"(CRC or format check failed: {first[:120]})") from None
    fmt = params.pop("ms_gan_format", None)
    raw = params.pop("ms_gan_meta", None)
    if fmt is None or raw is None:
        raise UserError(f"checkpoint {path} was not written by ms_gan (no ms_gan metadata); "
                        f"convert foreign weights with 'ms-gan convert'")
    fmt = fmt if isinstance(fmt, str) else str(fmt)
    if fmt != FORMAT:
        raise UserError(f"checkpoint {path} has format {fmt}, this ms_gan reads {FORMAT}")
    meta = json.loads(raw if isinstance(raw, str) else str(raw))
    return _current_names(params, meta), meta


def _current_names(params, meta):
    """Checkpoints written before the networks were explicit classes carry positional
    parameter names (``generator.body.layers.1.0.weight``): give them today's names."""
    from ms_gan import presets
    from ms_gan.models.old_names import rename

    preset = presets.PRESETS.get(meta.get("preset"))
    return params if preset is None else rename(params, preset.name, preset.param_prefixes)


def assign(cells, params, path="checkpoint", strict=True):
    """Copy checkpoint values into the parameters of ``cells`` (matching by name).

    Raises:
        UserError: a parameter is missing from the checkpoint or has another shape.
    """
    for cell in cells:
        targets = cell.state_parameters() if hasattr(cell, "state_parameters") else cell.get_parameters()
        for p in targets:
            value = params.get(p.name)
            if value is None:
                if strict:
                    raise UserError(f"{path} lacks parameter {p.name}: it belongs to another preset "
                                    f"or another architecture")
                continue
            if tuple(value.shape) != tuple(p.shape):
                raise UserError(f"{path}: parameter {p.name} has shape {tuple(value.shape)}, "
                                f"the network expects {tuple(p.shape)} (another preset or --z-dim?)")
            p.set_data(value.data if hasattr(value, "data") and not isinstance(value, np.ndarray) else value)
