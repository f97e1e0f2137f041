"""Every file the project writes, written atomically; checkpoints; file hashes.

This is the bottom layer that writes: train, generate, export, convert, eval and the
CLI all write through :func:`atomic_output` (or the small helpers built on it).

* A file is written to a temporary name in its own folder and renamed over the
  target only when complete, so a kill at any moment leaves the previous file
  intact and no half-written one.
* On any failure the temporary file is removed, and an ``OSError`` becomes a one-line
  :class:`UserError` naming the path and the reason (disk full, read-only file
  system, not a directory, ...).
* Files get the mode the umask allows (0644 under the usual 022): MindSpore's own
  writers leave checkpoints and exports at 0400, which surprised users (issue 12).

A checkpoint (MindSpore's format, CRC-checked) holds G's and D's parameters (BatchNorm
moving statistics and spectral-norm vectors included), both optimizers' states, and
metadata: the preset and its overrides, epoch, batch-in-epoch and step counters, and
the NumPy noise generator's state.
"""
import contextlib
import errno
import json
import os
import sys
import tempfile

import numpy as np

from ms_gan import interrupt
from ms_gan.errors import UserError

FORMAT = "ms_gan-ckpt-1"
TEMP_MARK = ".tmp"   # every temporary file name contains it (tests look for leftovers by it)

_REASONS = {
    errno.ENOSPC: "no space left on the device (disk full)",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
    errno.ENOTDIR: "a part of the path is a file, not a directory",
    errno.EISDIR: "it is a directory",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted (immutable or protected)",
    errno.ENAMETOOLONG: "the name is too long",
    errno.EEXIST: "a part of the path is a file, not a directory",   # os.makedirs meeting a file
}


def reason(exc, folder=None):
    """A short human reason for an OSError (``folder``: where a write without errno failed)."""
    known = _REASONS.get(getattr(exc, "errno", None))
    if known:
        return known
    # Some writers (numpy's tofile: "320000 requested and 42976 written") raise without an
    # errno; a nearly full file system is then the cause.
    free = _free_bytes(folder) if folder else None
    if free is not None and free < 64 * 1024:
        return "no space left on the device (disk full)"
    return exc.strerror or str(exc)


def write_error(path, exc, folder=None):
    """The UserError for a failed write of ``path``."""
    return UserError(f"cannot write {path}: {reason(exc, folder)}")


def _umask():
    # /proc avoids os.umask's set-and-restore, which races with threads that create files.
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def file_mode():
    """Mode of a new file under the process umask (0644 with the usual 022)."""
    return 0o666 & ~_umask()


def _remove_quietly(path):
    try:
        os.remove(path)
    except OSError:
        pass


@contextlib.contextmanager
def atomic_output(path, suffix=None):
    """Yield a temporary path beside ``path``; move it over ``path`` when the block succeeds.

    ``suffix`` (default: ``path``'s extension) ends the temporary name, for writers that
    choose the format by extension (Pillow) or append one (``numpy.save``). Any failure
    removes the temporary file; an ``OSError`` becomes a :class:`UserError`.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    suffix = os.path.splitext(path)[1] if suffix is None else suffix
    tmp = os.path.join(folder, f".{os.path.basename(path)}.{os.getpid()}{TEMP_MARK}{suffix}")
    try:
        os.makedirs(folder, exist_ok=True)
        if os.path.isdir(path):
            raise IsADirectoryError(errno.EISDIR, "is a directory", path)
        yield tmp
        if not os.path.isfile(tmp):
            raise UserError(f"cannot write {path}: the writer produced no file")
        interrupt.check()  # an interrupted command moves no new file into place
        os.chmod(tmp, file_mode())
        os.replace(tmp, path)
    except OSError as exc:
        error = write_error(path, exc, folder)   # before the removal frees the space again
        _remove_quietly(tmp)
        raise error from None
    except BaseException:
        _remove_quietly(tmp)
        raise


def write_text(path, text):
    """Atomically write ``text`` (UTF-8) to ``path``."""
    with atomic_output(path) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())  # ENOSPC on a full disk shows up here at the latest
    return path


def write_json(path, obj):
    """Atomically write ``obj`` as indented, key-sorted JSON."""
    return write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def write_npy(path, array):
    """Atomically write a NumPy array as ``.npy``."""
    with atomic_output(path, ".npy") as tmp:
        np.save(tmp, array)
    return path


def append_text(path, text):
    """Append ``text`` to a log file; an OSError becomes a one-line UserError."""
    try:
        with open(path, "a", encoding="utf-8") as f:
            f.write(text)
    except OSError as exc:
        raise write_error(path, exc) from None


def check_writable(path, kind="file"):
    """Refuse, before any work, an output ``path`` that cannot be written.

    ``kind`` 'file': ``path`` must not be a directory; 'dir': it must not be a file.
    The nearest existing folder above it must be a writable directory (probed by
    creating and removing a file: permission bits do not stop root, a read-only or
    immutable file system does). Nothing is left behind.
    """
    path = os.path.abspath(os.path.expanduser(os.fspath(path)))
    if kind == "file" and os.path.isdir(path):
        raise UserError(f"cannot write {path}: it is a directory")
    if kind == "dir" and os.path.exists(path) and not os.path.isdir(path):
        raise UserError(f"cannot use {path} as a directory: it is a file")
    folder = path if kind == "dir" and os.path.isdir(path) else os.path.dirname(path)
    while not os.path.exists(folder):
        folder = os.path.dirname(folder)
    if not os.path.isdir(folder):
        raise UserError(f"cannot write {path}: {folder} is a file, not a directory")
    try:
        fd, probe = tempfile.mkstemp(prefix=".ms_gan-probe-", suffix=TEMP_MARK, dir=folder)
    except OSError as exc:
        raise UserError(f"cannot write {path}: {reason(exc)} ({folder})") from None
    os.close(fd)
    os.remove(probe)
    if kind == "file" and os.path.exists(path) and not os.access(path, os.W_OK):
        raise UserError(f"cannot write {path}: permission denied")


@contextlib.contextmanager
def quiet_native_stderr():
    """Hide what native code prints to file descriptor 2 during the block.

    MindSpore's C++ loader prints ``[ERROR] ME ... May not have permission`` before it
    raises on a corrupt checkpoint; the caller turns the exception into its own one-line
    message, so the native line would only mislead. Python's sys.stderr is flushed first.
    """
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real fd 2 (embedded use)
        yield
        return
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


# ---------------------------------------------------------------------------- checkpoints


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

    append = {"ms_gan_format": FORMAT, "ms_gan_meta": json.dumps(meta, sort_keys=True)}
    entries = _entries(cells)
    with atomic_output(path, ".ckpt") as tmp:
        try:
            ms.save_checkpoint(entries, tmp, append_dict=append, crc_check=True)
        except BaseException as exc:
            # MindSpore writes to its own temporary name (".ckpt" -> ".tmp") and leaves it on failure
            _remove_quietly(tmp[: -len(".ckpt")] + ".tmp")
            if not isinstance(exc, Exception) or isinstance(exc, OSError):
                raise
            # MindSpore wraps write failures (a full disk included) in a RuntimeError without errno
            need = sum(int(np.prod(e["data"].shape)) * e["data"].itemsize for e in entries)
            free = _free_bytes(os.path.dirname(os.path.abspath(path)))
            why = ("no space left on the device (disk full)" if free is not None and free < need
                   else _first_line(exc))
            raise UserError(f"cannot write {path}: {why}") from None
    return path


def _free_bytes(folder):
    try:
        st = os.statvfs(folder)
    except OSError:
        return None
    return st.f_bavail * st.f_frsize


def _first_line(exc):
    return (str(exc).strip().splitlines() or [exc.__class__.__name__])[0]


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
        with quiet_native_stderr():
            params = ms.load_checkpoint(path, crc_check=True)
    except Exception as exc:
        raise UserError(f"checkpoint {path} is corrupt or not a MindSpore checkpoint "
                        f"({_load_failure(path, exc)}); use another checkpoint or re-run training") from None
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


def _load_failure(path, exc):
    """Why MindSpore could not read a checkpoint, in our words where its own mislead.

    MindSpore 2.10 answers a CRC mismatch (a flipped or cut byte) with "Failed to read the
    checkpoint file ... May not have permission to read it": for a file we can read, the
    permission guess is wrong, so the reason given is the checksum.
    """
    text = " ".join(str(exc).split()) or exc.__class__.__name__
    if "permission" in text.lower() and os.access(path, os.R_OK):
        return "its CRC check or format parse failed: the bytes differ from what was written"
    return text


def read_meta(path):
    """Only the metadata of a checkpoint (for decisions made before networks are built)."""
    return load(path)[1]


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
