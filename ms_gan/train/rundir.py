"""The run directory: options, logs, stats, the metrics table, samples and plots.

A run directory holds::

    options.json            the run's options and resolved preset (+ a history of resumed changes)
    log.txt                 one line per epoch and event
    stats.jsonl             per-epoch records (and per-step records every --log-every steps)
    metrics.csv             per-epoch table
    fixed_noise.npy         the latent vectors of the sample grids, drawn once
    samples/grid_epoch_NNNN.png, samples/grid_latest.png   (every --sample-every, and at the end)
    plots/losses.png, plots/accuracy.png                   (every --plot-every, and at the end)
    attention/epoch_NNNN.png   (networks with self-attention, with the samples)
    checkpoints/latest.ckpt    (+ epoch_NNNN.ckpt with --keep-checkpoints, best.ckpt with --eval-every)
    .lock                   held while a run uses the directory

:class:`RunDir` writes all of it (rank 0 only; other ranks get a RunDir that writes
nothing) through :mod:`ms_gan.checkpoint`'s atomic writes. The training loop calls it.
Pictures (sample grids, attention figures, plots) are encoded and drawn by an
:class:`OutputWorker` thread so training does not wait for them; :meth:`RunDir.finish`
waits for it, so the directory is complete when the command exits.
"""
import csv
import dataclasses
import io
import json
import math
import os
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Optional

from ms_gan import checkpoint as ckpt_io
from ms_gan import interrupt
from ms_gan.errors import UserError

EPOCH_FIELDS = ("epoch", "step", "d_loss", "g_loss", "d_loss_real", "d_loss_fake", "d_acc_real", "d_acc_fake",
                "g_acc", "images_per_sec", "epoch_seconds", "wall_time")
# Options that change the math of a run: a resume with other values is refused. Every
# other option (epochs, max_steps, ckpt/sample/plot/eval/log intervals, threads, progress, ...) only
# lengthens, checkpoints or logs the run and may change on resume.
MATH_OPTIONS = ("preset", "overrides", "data", "seed")
LENGTH_OVERRIDES = ("epochs",)   # overrides that only lengthen a run


@dataclass(frozen=True)
class RunOptions:
    """Everything a training run is told, recorded in options.json."""

    preset: str
    out: str
    data: str = "builtin"
    data_description: str = "builtin"
    overrides: dict = field(default_factory=dict)
    seed: int = 0
    device: str = "CPU"
    mode: str = "graph"
    threads: Optional[int] = None
    workers: int = 1
    max_steps: Optional[int] = None
    ckpt_every: int = 0
    sample_every: str = "1"           # a cadence (see Cadence): every N epochs, or "Ns" seconds
    plot_every: str = "60s"
    log_every: int = 50
    keep_checkpoints: bool = False
    ema: Optional[float] = None
    eval_every: int = 0
    progress: Optional[bool] = None   # None: when stderr is a terminal
    tensorboard: bool = False         # also write RUN/tensorboard event files (train --tensorboard)

    def to_json(self):
        return dataclasses.asdict(self)


class Cadence:
    """When a periodic output is due at an epoch end: ``"N"`` every N epochs, ``"Ns"`` at the first
    epoch end at least N seconds after the last write, ``"0"`` only at the end of the run (and on
    Ctrl-C). The end of a run always writes, whatever the cadence."""

    PATTERN = re.compile(r"^\s*(\d+)\s*(s?)\s*$")

    def __init__(self, text):
        match = self.PATTERN.match(str(text))
        if not match:
            raise ValueError(f"expected a number of epochs (e.g. 5) or of seconds (e.g. 30s), got {text!r}")
        self.count = int(match.group(1))
        self.seconds = bool(match.group(2))
        self.last = time.monotonic()

    def due(self, epoch):
        if self.count == 0:
            return False
        if self.seconds:
            return time.monotonic() - self.last >= self.count
        return epoch % self.count == 0

    def mark(self):
        self.last = time.monotonic()


class OutputWorker:
    """One background thread that writes pictures, in order, while training goes on.

    Jobs have a key; a job replaces a queued one with the same key (the plots of epoch 7 are
    stale once epoch 8's are queued), so a slow disk or a short ``--plot-every`` never piles up
    work. The first error a job raises is re-raised by :meth:`join` in the training thread. The
    thread leaves the one core a 1-thread preset pins the process to (``device._pin_to_one_core``):
    with a thread plotting nonstop on that same core a dcgan_digits8 step took 590-620 ms instead
    of 7-11 ms; on the other core 41-54 ms, the GIL that Matplotlib holds (bench/NOTES.md attempt
    41). So plots default to once a minute (~0.35 s of drawing: < 1% of training).
    """

    def __init__(self):
        self._jobs = {}          # key -> (fn, args); dicts keep insertion order
        self._cond = threading.Condition()
        self._busy = False
        self._error = None
        self._interrupted = {}   # jobs whose file move a Ctrl-C stopped (atomic_output): redone by join()
        self._thread = None

    def submit(self, key, fn, *args):
        with self._cond:
            self._jobs.pop(key, None)
            self._jobs[key] = (fn, args)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="ms_gan-outputs", daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def _loop(self):
        _use_all_cores()
        while True:
            with self._cond:
                while not self._jobs:
                    self._cond.wait()
                key = next(iter(self._jobs))
                fn, args = self._jobs.pop(key)
                self._busy = True
            try:
                fn(*args)
            except interrupt.Interrupted:
                with self._cond:
                    self._interrupted[key] = (fn, args)
            except BaseException as exc:  # noqa: BLE001 -- handed to the training thread by join()
                with self._cond:
                    self._error = self._error or exc
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def join(self, quiet=False):
        """Wait until every queued job is written; re-raise the first error of a job (``quiet``:
        drop it, when another error is already on its way). Jobs a Ctrl-C stopped are redone
        once the signal has been handled (the trainer clears it before its final outputs)."""
        while True:
            with self._cond:
                while self._jobs or self._busy:
                    self._cond.wait()
                redo = self._interrupted if not interrupt.pending() else {}
                self._interrupted = {} if redo else self._interrupted
            if not redo:
                break
            for key, (fn, args) in redo.items():
                if key not in self._jobs:
                    self.submit(key, fn, *args)
        with self._cond:
            error, self._error = self._error, None
        if error is not None and not quiet:
            raise error


def _use_all_cores():
    """Let the calling thread run on every core of the machine (Linux; the affinity is per thread)."""
    if hasattr(os, "sched_setaffinity"):
        try:
            os.sched_setaffinity(0, range(os.cpu_count() or 1))
        except OSError:
            pass


def math_differences(saved, wanted):
    """``["key: saved -> wanted", ...]`` for the options that may not change on resume."""
    def comparable(options, key):
        value = options.get(key)
        if key == "overrides":
            value = {k: v for k, v in (value or {}).items() if k not in LENGTH_OVERRIDES}
        return json.dumps(value, sort_keys=True)

    out = []
    for key in MATH_OPTIONS:
        if comparable(saved, key) != comparable(wanted, key):
            old = saved.get(key)
            new = wanted.get(key)
            if key == "overrides":
                old = {k: v for k, v in (old or {}).items() if k not in LENGTH_OVERRIDES}
                new = {k: v for k, v in (new or {}).items() if k not in LENGTH_OVERRIDES}
            out.append(f"{key}: {old!r} -> {new!r}")
    return out


def changed_options(saved, wanted):
    """{key: [saved, wanted]} for the options that differ (the history of a resumed run)."""
    skip = ("history", "resolved_preset")
    keys = sorted((set(saved) | set(wanted)) - set(skip))
    return {k: [saved.get(k), wanted.get(k)] for k in keys
            if json.dumps(saved.get(k), sort_keys=True, default=str) != json.dumps(wanted.get(k), sort_keys=True,
                                                                                     default=str)}


def read_json_file(path, what="file"):
    """A JSON object from ``path``; one-line UserError naming the file when it is not one."""
    try:
        with open(path, encoding="utf-8") as f:
            value = json.load(f)
    except ValueError as exc:
        raise UserError(f"{path} is not valid JSON ({exc}); fix or delete the {what}") from None
    except OSError as exc:
        raise UserError(f"cannot read {path}: {ckpt_io.reason(exc)}") from None
    if not isinstance(value, dict):
        raise UserError(f"{path} does not hold a JSON object; fix or delete the {what}")
    return value


def read_jsonl_file(path):
    """Records of a .jsonl file. A torn last line (a kill mid-write, no newline) is dropped;
    any other line that is not a JSON object is a one-line UserError naming file and line."""
    if not os.path.isfile(path):
        return []
    with open(path, encoding="utf-8", errors="replace") as f:
        text = f.read()
    lines = text.split("\n")[:-1]   # what follows the last newline is empty or a torn write: dropped
    records = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if not isinstance(record, dict):
            raise UserError(f"{path} line {number} is not a JSON record ({line[:40]!r}); fix or delete that line")
        records.append(record)
    return records


class RunDir:
    """Writes one run directory. ``writer=False`` (ranks other than 0) writes nothing."""

    def __init__(self, out, writer=True, echo=None):
        self.out = out
        self.writer = writer
        self.echo = echo or print
        self.ckpt_path = self.path("checkpoints", "latest.ckpt")
        self._lock_fd = None
        self.worker = OutputWorker()

    def path(self, *parts):
        return os.path.join(self.out, *parts)

    # ------------------------------------------------------------------ lock

    def lock(self):
        """Hold the directory for this process (an flock the kernel drops when the process dies,
        so a stale lock of a killed run is taken over); a second run exits with the holder's PID."""
        if not self.writer:
            return
        import fcntl

        try:
            os.makedirs(self.out, exist_ok=True)
            fd = os.open(self.path(".lock"), os.O_RDWR | os.O_CREAT, ckpt_io.file_mode())
        except OSError as exc:
            raise ckpt_io.write_error(self.path(".lock"), exc) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise UserError(f"{self.out} is in use by another run (process {holder}); wait for it to finish "
                            f"or choose another --out") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._lock_fd = fd

    def unlock(self):
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    # ------------------------------------------------------------------ options

    def saved_options(self):
        path = self.path("options.json")
        return read_json_file(path, "run's options file") if os.path.isfile(path) else None

    def check_compatible(self, options):
        """Refuse to resume a run whose math options differ from ``options`` (a dict), listing each.

        Returns the saved options (None for a new run directory)."""
        saved = self.saved_options()
        differences = math_differences(saved, options) if saved is not None else []
        if differences:
            raise UserError(f"{self.out} holds a run with other settings ({'; '.join(differences)}): "
                            f"resume with the same ones or choose another --out")
        return saved

    def write_options(self, options, resolved_preset):
        """Record ``options`` (a dict); on a resume refuse math changes and keep a history of the rest."""
        saved = self.check_compatible(options)
        record = dict(options, resolved_preset=resolved_preset)
        if saved is not None:
            history = list(saved.get("history") or [])
            changes = changed_options(saved, record)
            if changes:
                history.append({"time": time.strftime("%Y-%m-%d %H:%M:%S"), "changed": changes})
            record["history"] = history
        if self.writer:
            ckpt_io.write_json(self.path("options.json"), record)

    # ------------------------------------------------------------------ logs

    def prepare(self):
        if not self.writer:
            return
        for sub in ("samples", "plots", "checkpoints"):
            try:
                os.makedirs(self.path(sub), exist_ok=True)
            except OSError as exc:
                raise ckpt_io.write_error(self.path(sub), exc) from None

    def check_logs(self):
        """Read stats.jsonl once so a damaged file is reported before any work."""
        read_jsonl_file(self.path("stats.jsonl"))

    def truncate_logs(self, step):
        """Keep only records up to ``step`` (the checkpoint being resumed; 0 when there is none).

        Records written after it will be redone; a partial epoch's record is superseded by the
        full one the resumed run writes.
        """
        if not self.writer:
            return
        kept = [r for r in read_jsonl_file(self.path("stats.jsonl"))
                if int(r.get("step", 0)) <= step and not r.get("partial")]
        ckpt_io.write_text(self.path("stats.jsonl"), "".join(json.dumps(r) + "\n" for r in kept))
        self._write_table([r for r in kept if r.get("kind") == "epoch"])

    def _write_table(self, records):
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=EPOCH_FIELDS, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: r.get(k) for k in EPOCH_FIELDS} for r in records)
        ckpt_io.write_text(self.path("metrics.csv"), buffer.getvalue())

    def append_stats(self, record):
        if self.writer:
            ckpt_io.append_text(self.path("stats.jsonl"), json.dumps(record) + "\n")

    def append_metrics(self, record):
        if not self.writer:
            return
        buffer = io.StringIO()
        csv.DictWriter(buffer, fieldnames=EPOCH_FIELDS, extrasaction="ignore",
                       lineterminator="\n").writerow({k: record.get(k) for k in EPOCH_FIELDS})
        ckpt_io.append_text(self.path("metrics.csv"), buffer.getvalue())

    def log(self, line):
        if not self.writer:
            return
        ckpt_io.append_text(self.path("log.txt"), time.strftime("%Y-%m-%d %H:%M:%S ") + line + "\n")
        self.echo(line)

    def epoch_records(self):
        return [r for r in read_jsonl_file(self.path("stats.jsonl")) if r.get("kind") == "epoch"
                and not r.get("partial")]

    # ------------------------------------------------------------------ pictures

    def write_fixed_noise(self, fixed_noise):
        if self.writer and not os.path.isfile(self.path("fixed_noise.npy")):
            ckpt_io.write_npy(self.path("fixed_noise.npy"), fixed_noise)

    def write_samples(self, preset, epoch, out):
        """Sample grids (and attention figures) of G's output ``out`` on the fixed noise, written
        by the worker thread (the arrays are copied to the host here, in the training thread)."""
        if not self.writer:
            return
        from ms_gan.models import primary

        images = primary(out).asnumpy()
        attn = out[1].asnumpy() if isinstance(out, tuple) and len(out) > 1 else None
        self.worker.submit(("samples", epoch), self._write_sample_files, preset, epoch, images, attn)

    def _write_sample_files(self, preset, epoch, images, attn):
        from ms_gan import viz

        p = preset
        for name in (f"grid_epoch_{epoch:04d}.png", "grid_latest.png"):
            viz.save_grid(images, self.path("samples", name), p.grid_rows, p.grid_cols, p.grid_gap)
        if p.sample_images and epoch % p.sample_images_every == 0:
            for i in range(min(p.sample_images, len(images))):
                viz.save_image(viz.to_uint8(images[i: i + 1])[0],
                               self.path("samples", f"epoch_{epoch:04d}_{i + 1}.png"))
        if attn is not None and epoch % max(p.attention_every, 1) == 0:
            side = int(round(math.sqrt(attn.shape[-1])))
            viz.attention_figure(images, attn, (side // 2 - 1, side // 2 - 1), side,
                                 self.path("attention", f"epoch_{epoch:04d}.png"))

    def write_plots(self, preset):
        """The loss and accuracy curves of the epoch records so far, drawn by the worker thread."""
        if self.writer:
            self.worker.submit(("plots",), self._draw_plots, preset, self.epoch_records())

    def _draw_plots(self, preset, records):
        from ms_gan import viz

        p = preset
        if p.d_updates and "d_fake" in p.steps and "d_real" in p.steps:
            loss_keys = ("d_loss_fake", "d_loss_real", "g_loss")
        else:
            loss_keys = ("d_loss", "g_loss")
        viz.plot_curves(records, self.path("plots", "losses.png"), loss_keys, f"{p.name}: losses per epoch", "loss")
        viz.plot_curves(records, self.path("plots", "accuracy.png"), ("d_acc_fake", "d_acc_real"),
                        f"{p.name}: D accuracy per epoch", "accuracy")

    def finish(self, quiet=False):
        """Wait for the worker: every queued picture is on disk when this returns."""
        self.worker.join(quiet)
