"""The one training loop for every preset, and the run directory it writes.

The trainer follows the preset's step order (``preset.steps``); it knows nothing of
any one model. A run directory holds::

    options.json            resolved preset and command-line options
    log.txt                 one line per epoch and event
    stats.jsonl             per-epoch records (and per-step records every --log-every steps)
    metrics.csv             per-epoch table
    fixed_noise.npy         the latent vectors of the sample grids, drawn once
    samples/grid_epoch_NNNN.png, samples/grid_latest.png
    plots/losses.png, plots/accuracy.png
    attention/epoch_NNNN.png   (networks with self-attention)
    checkpoints/latest.ckpt    (+ epoch_NNNN.ckpt with --keep-checkpoints)

Nothing is lost on a kill: checkpoints are atomic, and a rerun into the same
directory resumes from the last one with the exact data order and noise stream.
"""
import csv
import json
import math
import os
import sys
import time

import numpy as np

from ms_gan.errors import UserError
from ms_gan.train import checkpoint as ckpt_io

EPOCH_FIELDS = ("epoch", "step", "d_loss", "g_loss", "d_loss_real", "d_loss_fake", "d_acc_real", "d_acc_fake",
                "g_acc", "images_per_sec", "epoch_seconds", "wall_time")
# Options that must match when a run directory is resumed (others, e.g. --epochs, may change).
RESUME_FIXED = ("preset", "overrides", "data", "seed")


class TrainingDiverged(UserError):
    """A loss became NaN or infinite."""


def sample_noise(rng, n, preset):
    """``n`` latent vectors (n, z_dim) float32 from the preset's distribution."""
    if preset.noise == "uniform":
        return rng.uniform(-1.0, 1.0, (n, preset.z_dim)).astype(np.float32)
    return rng.standard_normal((n, preset.z_dim)).astype(np.float32)


def iteration_inputs(rng, batch, preset, steps):
    """(fake_inputs, z_g) of one iteration for ``steps.iteration``, noise drawn in the trainer's order.

    ``fake_inputs`` stacks one entry per update that judges fakes: latent vectors, or the fake
    images themselves for recipes whose G makes D's fakes in eval mode. One tensor, not a
    tuple (tuples of tensors would make mindspore.jit recompile every call); noise is stacked
    in NumPy (one host copy, no eager op). The trainer and the benchmark share this function.
    """
    import mindspore as ms
    from mindspore import ops

    zs = [sample_noise(rng, batch, preset) for token in preset.steps if token in ("d", "d_fake")]
    z_g = ms.Tensor(sample_noise(rng, batch * preset.g_batch_mult, preset))
    if not zs:
        return z_g, z_g
    if steps.fakes_given:
        return ops.stack([steps.generate(ms.Tensor(z)) for z in zs]), z_g
    return ms.Tensor(np.stack(zs)), z_g


def network_diagnostics(net):
    """Scalars worth logging from inside a network: attention gammas and spectral-norm sigmas."""
    from ms_gan.nn.attention import attention_gammas

    values = attention_gammas(net)
    try:
        from ms_gan.nn.spectral_norm import spectral_norm_sigmas

        values.update({f"{k}.sigma": float(v) for k, v in spectral_norm_sigmas(net).items()})
    except ImportError:
        pass
    return values


class Progress:
    """A one-line progress bar on stderr (only when stderr is a terminal)."""

    def __init__(self, enabled=None):
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.last = 0.0

    def update(self, epoch, epochs, i, n, text):
        if not self.enabled:
            return
        now = time.time()
        if now - self.last < 0.2 and i != n:
            return
        self.last = now
        width = 24
        done = int(width * i / max(n, 1))
        sys.stderr.write(f"\repoch {epoch}/{epochs} [{'#' * done}{'.' * (width - done)}] {i}/{n} {text}   ")
        sys.stderr.flush()

    def close(self):
        if self.enabled:
            sys.stderr.write("\r" + " " * 100 + "\r")
            sys.stderr.flush()


class Trainer:
    """Trains one preset into one run directory.

    Args:
        preset: the (overridden) Preset.
        data: the ``--data`` value.
        out: the run directory.
        options: dict of the CLI options, saved in options.json (must contain ``overrides``).
        seed: seed of weights, noise and data order.
        mode: 'graph' or 'pynative'.
        max_steps: stop after this many iterations in total (None: run all epochs).
        ckpt_every: also checkpoint every N iterations (0: at epoch ends only).
        log_every: write a per-step record to stats.jsonl every N iterations (0: never).
        keep_checkpoints: keep a copy of each epoch's checkpoint.
        rank, world: this process's rank and the number of data-parallel workers.
        echo: callable for user-facing lines (None: print).
    """

    def __init__(self, preset, data, out, options, seed=0, mode="graph", max_steps=None, ckpt_every=0,
                 log_every=50, keep_checkpoints=False, rank=0, world=1, grad_reducers=(None, None), echo=None,
                 progress=None, ema_decay=None, eval_every=0, eval_data=None, eval_n=2000):
        self.preset = preset
        self.data = data
        self.out = out
        self.options = dict(options)
        self.seed = int(seed)
        self.mode = mode
        self.max_steps = max_steps
        self.ckpt_every = int(ckpt_every or 0)
        self.log_every = int(log_every or 0)
        self.keep_checkpoints = keep_checkpoints
        self.rank, self.world = rank, world
        self.is_writer = rank == 0
        self.grad_reducers = grad_reducers
        self.echo = echo or print
        self.progress = Progress(progress if self.is_writer else False)
        self.ckpt_path = os.path.join(out, "checkpoints", "latest.ckpt")
        self.ema_decay = ema_decay
        self.eval_every = int(eval_every or 0)
        self.eval_data = eval_data
        self.eval_n = int(eval_n)
        self.ema = None
        self._sums = None
        self._resume_sums = None

    # ------------------------------------------------------------------ setup

    def _prepare_dir(self):
        """Create or re-open the run directory; returns the checkpoint to resume from (or None)."""
        opt_path = os.path.join(self.out, "options.json")
        resume = os.path.isfile(self.ckpt_path)
        if os.path.isfile(opt_path):
            with open(opt_path) as f:
                saved = json.load(f)
            for key in RESUME_FIXED:
                if json.dumps(saved.get(key), sort_keys=True) != json.dumps(self.options.get(key), sort_keys=True):
                    raise UserError(f"{self.out} holds a run with {key}={saved.get(key)!r}, not "
                                    f"{self.options.get(key)!r}: resume with the same options or choose another --out")
        if self.is_writer:
            for sub in ("samples", "plots", "checkpoints"):
                os.makedirs(os.path.join(self.out, sub), exist_ok=True)
            _write_json(opt_path, self.options)
            table = os.path.join(self.out, "metrics.csv")
            if not os.path.isfile(table):
                with open(table, "w", newline="") as f:
                    csv.DictWriter(f, fieldnames=EPOCH_FIELDS).writeheader()
        return self.ckpt_path if resume else None

    def _build_data(self):
        """The data pipeline; built first so bad data fails before the run directory is touched."""
        from ms_gan.data import ImagePipeline, ImageSpec

        p = self.preset
        self.pipeline = ImagePipeline(self.data, ImageSpec(p.image_size, p.channels), p.batch_size // p.real_batch_div,
                                      seed=self.seed, sampling=p.sampling, drop_remainder=p.drop_remainder,
                                      num_shards=self.world, shard_id=self.rank)

    def _build(self):
        from ms_gan.models import build
        from ms_gan.train.optim import Adam
        from ms_gan.train.steps import build_steps

        p = self.preset
        self.G, self.D = build(p, self.seed)
        self.G.set_train(True)
        self.D.set_train(True)
        self.opt_g = Adam(self.G.trainable_params(), p.lr_g, p.beta1_g, p.beta2_g, p.adam_eps, p.adam_eps_mode,
                          prefix="opt_g")
        self.opt_d = Adam(self.D.trainable_params(), p.lr_d, p.beta1_d, p.beta2_d, p.adam_eps, p.adam_eps_mode,
                          prefix="opt_d")
        reducer_g, reducer_d = self.grad_reducers
        if callable(reducer_g) and not hasattr(reducer_g, "construct"):  # factories taking the params
            reducer_g, reducer_d = reducer_g(self.opt_g.params), reducer_d(self.opt_d.params)
        if self.ema_decay:
            from ms_gan.train.ema import EMA

            self.ema = EMA(self.G, self.ema_decay)
        self.steps = build_steps(p, self.G, self.D, self.opt_g, self.opt_d, use_jit=self.mode == "graph",
                                 grad_reducer_g=reducer_g, grad_reducer_d=reducer_d, ema=self.ema)
        # Noise differs per rank (each rank makes its own fakes), weights and data order do not.
        self.rng = np.random.default_rng([self.seed, 7919, self.rank])
        noise_path = os.path.join(self.out, "fixed_noise.npy")
        n = p.grid_rows * p.grid_cols
        # The grid noise is a function of the seed; the file records it for other tools.
        self.fixed_noise = sample_noise(np.random.default_rng([self.seed, 104729]), n, p)
        if self.is_writer and not os.path.isfile(noise_path):
            tmp = noise_path + ".tmp.npy"
            np.save(tmp, self.fixed_noise)
            os.replace(tmp, noise_path)

    def _cells(self):
        cells = [self.G, self.D, self.opt_g, self.opt_d]
        return cells + [self.ema] if self.ema is not None else cells

    def save_checkpoint(self, epoch, batch_in_epoch, step, path=None):
        if not self.is_writer:
            return None
        meta = {"preset": self.preset.name, "overrides": self.options.get("overrides", {}), "epoch": epoch,
                "batch_in_epoch": batch_in_epoch, "step": step, "seed": self.seed,
                "rng": _rng_to_json(self.rng.bit_generator.state), "world": self.world,
                # running sums of a partly done epoch, so its record is exact after a resume
                "epoch_sums": self._sums if batch_in_epoch else None}
        return ckpt_io.save(path or self.ckpt_path, self._cells(), meta)

    def _restore(self, path):
        params, meta = ckpt_io.load(path)
        if meta.get("preset") != self.preset.name:
            raise UserError(f"{path} is a {meta.get('preset')} checkpoint, not {self.preset.name}")
        ckpt_io.assign([self.G, self.D, self.opt_g, self.opt_d], params, path)
        if self.ema is not None:
            if all(s.name in params for s in self.ema.state_parameters()):
                ckpt_io.assign([self.ema], params, path)
            else:  # --ema added on resume: start the average from the loaded weights
                for shadow, p in zip(self.ema.state_parameters(), list(self.ema.averaged) + list(self.ema.copied)):
                    shadow.set_data(p.data.copy())
        if meta.get("world", 1) == self.world:
            self.rng.bit_generator.state = meta["rng"]
        else:  # different worker count: the noise stream cannot continue bit-exactly
            self.rng = np.random.default_rng([self.seed, 7919, self.rank, int(meta["step"])])
        self._resume_sums = meta.get("epoch_sums")
        return int(meta["epoch"]), int(meta["batch_in_epoch"]), int(meta["step"])

    # ------------------------------------------------------------------ logs

    def _truncate_logs(self, step):
        """Drop records written after the checkpoint we resume from (they will be redone)."""
        stats = os.path.join(self.out, "stats.jsonl")
        if os.path.isfile(stats):
            with open(stats) as f:
                records = [json.loads(line) for line in f if line.strip()]
            _write_lines(stats, [json.dumps(r) for r in records if r.get("step", 0) <= step])
        table = os.path.join(self.out, "metrics.csv")
        if os.path.isfile(table):
            with open(table) as f:
                rows = list(csv.DictReader(f))
            kept = [r for r in rows if int(r["step"]) <= step]
            with open(table + ".tmp", "w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=EPOCH_FIELDS, extrasaction="ignore")
                writer.writeheader()
                writer.writerows(kept)
            os.replace(table + ".tmp", table)

    def _append_stats(self, record):
        if not self.is_writer:
            return
        with open(os.path.join(self.out, "stats.jsonl"), "a") as f:
            f.write(json.dumps(record) + "\n")

    def _log(self, line):
        if not self.is_writer:
            return
        with open(os.path.join(self.out, "log.txt"), "a") as f:
            f.write(time.strftime("%Y-%m-%d %H:%M:%S ") + line + "\n")
        self.echo(line)

    def epoch_records(self):
        path = os.path.join(self.out, "stats.jsonl")
        if not os.path.isfile(path):
            return []
        with open(path) as f:
            return [r for r in (json.loads(line) for line in f if line.strip()) if r.get("kind") == "epoch"]

    def _end_of_epoch_outputs(self, epoch, record):
        p = self.preset
        with open(os.path.join(self.out, "metrics.csv"), "a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=EPOCH_FIELDS, extrasaction="ignore")
            writer.writerow({k: record.get(k) for k in EPOCH_FIELDS})
        self.write_samples(epoch)
        records = self.epoch_records()
        from ms_gan import viz

        if p.d_updates and "d_fake" in p.steps and "d_real" in p.steps:
            loss_keys = ("d_loss_fake", "d_loss_real", "g_loss")
        else:
            loss_keys = ("d_loss", "g_loss")
        viz.plot_curves(records, os.path.join(self.out, "plots", "losses.png"), loss_keys,
                        f"{p.name}: losses per epoch", "loss")
        viz.plot_curves(records, os.path.join(self.out, "plots", "accuracy.png"), ("d_acc_fake", "d_acc_real"),
                        f"{p.name}: D accuracy per epoch", "accuracy")

    def generate(self, z, train=False):
        """G's images for latent vectors ``z`` (eval mode by default), as NumPy."""
        import mindspore as ms

        self.G.set_train(train)
        out = self.G(ms.Tensor(z))
        self.G.set_train(True)
        return out

    def write_samples(self, epoch):
        from ms_gan import viz
        from ms_gan.models import primary

        p = self.preset
        out = self.generate(self.fixed_noise)
        images = primary(out).asnumpy()
        name = f"grid_epoch_{epoch:04d}.png"
        viz.save_grid(images, os.path.join(self.out, "samples", name), p.grid_rows, p.grid_cols, p.grid_gap)
        viz.save_grid(images, os.path.join(self.out, "samples", "grid_latest.png"), p.grid_rows, p.grid_cols,
                      p.grid_gap)
        if p.sample_images and epoch % p.sample_images_every == 0:
            for i in range(min(p.sample_images, len(images))):
                viz.save_image(viz.to_uint8(images[i: i + 1])[0],
                               os.path.join(self.out, "samples", f"epoch_{epoch:04d}_{i + 1}.png"))
        if isinstance(out, tuple) and len(out) > 1 and epoch % max(p.attention_every, 1) == 0:
            attn = out[1].asnumpy()
            side = int(round(math.sqrt(attn.shape[-1])))
            viz.attention_figure(images, attn, (side // 2 - 1, side // 2 - 1), side,
                                 os.path.join(self.out, "attention", f"epoch_{epoch:04d}.png"))

    # ------------------------------------------------------------------ loop

    def fit(self):
        """Train until the preset's epochs (or ``max_steps``) are done; returns a summary dict."""
        self._build_data()
        resume_from = self._prepare_dir()
        self._build()
        p = self.preset
        epoch, skip, step = 0, 0, 0
        if resume_from:
            epoch, skip, step = self._restore(resume_from)
            if self.is_writer:
                self._truncate_logs(step)
            self._log(f"resuming from {resume_from} at epoch {epoch + 1}, step {step}")
        else:
            self._log(f"training {p.name} on {self.options.get('data_description', self.data)} "
                      f"({self.pipeline.num_samples} images, {self.pipeline.batches_per_epoch()} iterations/epoch, "
                      f"mode {self.mode}) into {self.out}")
        if epoch >= p.epochs or (self.max_steps is not None and step >= self.max_steps):
            self._log(f"nothing to do: the run is at epoch {epoch}, step {step}")
            return {"epoch": epoch, "step": step, "stopped": "complete"}
        n_batches = self.pipeline.batches_per_epoch()
        t_start = time.time()
        stopped = "complete"
        while epoch < p.epochs:
            dataset = self.pipeline.dataset(epoch, skip)
            sums = {k: 0.0 for k in ("d_loss", "g_loss", "d_loss_real", "d_loss_fake", "n_real_upd", "n_fake_upd",
                                     "d_acc_real", "d_acc_fake", "g_acc", "n_d", "n_g", "images")}
            if skip and self._resume_sums:
                sums.update(self._resume_sums)
            self._sums = sums
            t_epoch = time.time()
            i = skip
            last_good = None
            iterator = dataset.create_tuple_iterator(num_epochs=1) if dataset is not None else []
            for (real,) in iterator:
                batch = real.shape[0]
                fakes, z_g = iteration_inputs(self.rng, batch, p, self.steps)
                values = self.steps.run(step, self.rng, real, fakes, z_g).asnumpy()
                step += 1
                i += 1
                last_good = self._accumulate(sums, values, batch, step, epoch)
                if self.log_every and step % self.log_every == 0:
                    self._append_stats(dict(kind="step", step=step, epoch=epoch + 1, **last_good))
                rate = sums["images"] / max(time.time() - t_epoch, 1e-9)
                self.progress.update(epoch + 1, p.epochs, i, n_batches,
                                     f"d={last_good['d_loss']:.4f} g={last_good['g_loss']:.4f} {rate:.0f} img/s")
                if self.ckpt_every and step % self.ckpt_every == 0:
                    self.save_checkpoint(epoch, i, step)
                if self.max_steps is not None and step >= self.max_steps:
                    stopped = "max_steps"
                    break
            self.progress.close()
            seconds = time.time() - t_epoch
            finished_epoch = stopped != "max_steps" or i >= n_batches
            if finished_epoch:
                epoch += 1
                skip = 0
                record = self._epoch_record(sums, epoch, step, seconds, time.time() - t_start)
                best = self._evaluate(epoch, record)
                self._append_stats(record)
                self._log(f"epoch {epoch}/{p.epochs} step {step}: d_loss {record['d_loss']:.4f} "
                          f"g_loss {record['g_loss']:.4f} D acc real {record['d_acc_real']:.3f} "
                          f"fake {record['d_acc_fake']:.3f} | {record['images_per_sec']:.0f} img/s")
                if self.is_writer:
                    self._end_of_epoch_outputs(epoch, record)
                self.save_checkpoint(epoch, 0, step)
                if best:
                    self.save_checkpoint(epoch, 0, step, os.path.join(self.out, "checkpoints", "best.ckpt"))
                if self.keep_checkpoints:
                    self.save_checkpoint(epoch, 0, step, os.path.join(self.out, "checkpoints", f"epoch_{epoch:04d}.ckpt"))
            else:
                self.save_checkpoint(epoch, i, step)
                if self.is_writer:  # samples of the partly done epoch, so an early stop still shows images
                    self.write_samples(epoch + 1)
            if stopped == "max_steps":
                self._log(f"stopped at step {step} (--max-steps); rerun with a larger --max-steps or without it "
                          f"to continue")
                break
        return {"epoch": epoch, "step": step, "stopped": stopped, "out": self.out}

    def _evaluate(self, epoch, record):
        """FCD/KID every ``eval_every`` epochs (rank 0); True when this is the best FCD so far."""
        if not (self.eval_every and self.is_writer and epoch % self.eval_every == 0):
            return False
        from ms_gan.eval.evaluate import quick_fcd_kid

        self.G.set_train(False)
        try:
            result = quick_fcd_kid(self.G, self.preset, self.eval_data, self.eval_n, seed=self.seed)
        finally:
            self.G.set_train(True)
        record.update(fcd=result["fcd"], kid_mean=result["kid_mean"], kid_std=result["kid_std"],
                      eval_n=result["n_generated"], eval_extractor_sha256=result["extractor_sha256"])
        earlier = [r["fcd"] for r in self.epoch_records() if r.get("fcd") is not None]
        self._log(f"epoch {epoch}: FCD {result['fcd']:.3f}, KID {result['kid_mean']:.4f} "
                  f"+- {result['kid_std']:.4f} ({result['n_generated']} samples)")
        return not earlier or result["fcd"] < min(earlier)

    def _accumulate(self, sums, values, batch, step, epoch):
        """Add one iteration's outputs (flat vector in step order) to the epoch sums; stop on NaN/inf."""
        current = {}
        d_total = 0.0
        g_total = 0.0
        pos = 0
        for token in self.preset.steps:
            if token == "g":
                g_loss, g_acc = (float(v) for v in values[pos:pos + 2])
                pos += 2
                g_total += g_loss
                sums["g_acc"] += g_acc
                sums["n_g"] += 1
                continue
            total, loss_real, loss_fake, acc_real, acc_fake = (float(v) for v in values[pos:pos + 5])
            pos += 5
            d_total += total
            sums["n_d"] += 1
            if token in ("d", "d_real"):
                sums["d_loss_real"] += loss_real
                sums["d_acc_real"] += acc_real
                sums["n_real_upd"] += 1
                current["d_loss_real"] = loss_real
            if token in ("d", "d_fake"):
                sums["d_loss_fake"] += loss_fake
                sums["d_acc_fake"] += acc_fake
                sums["n_fake_upd"] += 1
                current["d_loss_fake"] = loss_fake
        d_total = d_total / self.preset.n_critic   # per iteration: the mean over the D part's repeats
        sums["d_loss"] += d_total
        sums["g_loss"] += g_total
        sums["images"] += batch
        current.update(d_loss=d_total, g_loss=g_total)
        if not (math.isfinite(d_total) and math.isfinite(g_total)):
            where = (f"the last good checkpoint is {self.ckpt_path}" if os.path.isfile(self.ckpt_path)
                     else "no checkpoint was written before it (the last good checkpoint: none)")
            raise TrainingDiverged(f"loss became {'NaN' if math.isnan(d_total + g_total) else 'infinite'} at "
                                   f"step {step} (epoch {epoch + 1}); training stopped, {where}; "
                                   f"lower the learning rates")
        return current

    def _epoch_record(self, sums, epoch, step, seconds, wall):
        iters = max(sums["n_d"] / max(self.preset.d_updates, 1), 1)
        n_real = max(sums["n_real_upd"], 1)
        n_fake = max(sums["n_fake_upd"], 1)
        record = {
            "kind": "epoch", "epoch": epoch, "step": step,
            "d_loss": sums["d_loss"] / iters,
            "g_loss": sums["g_loss"] / max(sums["n_g"], 1),
            "d_loss_real": sums["d_loss_real"] / n_real, "d_loss_fake": sums["d_loss_fake"] / n_fake,
            "d_acc_real": sums["d_acc_real"] / n_real, "d_acc_fake": sums["d_acc_fake"] / n_fake,
            "g_acc": sums["g_acc"] / max(sums["n_g"], 1),
            "images_per_sec": sums["images"] * self.world / max(seconds, 1e-9),
            "epoch_seconds": seconds, "wall_time": time.time(),
        }
        diag = {**{f"G.{k}": v for k, v in network_diagnostics(self.G).items()},
                **{f"D.{k}": v for k, v in network_diagnostics(self.D).items()}}
        if diag:
            record["diagnostics"] = diag
        return record


def _rng_to_json(state):
    """NumPy's generator state as plain JSON (its 128-bit integers become Python ints)."""
    return json.loads(json.dumps(state, default=int))


def _write_json(path, obj):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True, default=str)
    os.replace(tmp, path)


def _write_lines(path, lines):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write("".join(line + "\n" for line in lines))
    os.replace(tmp, path)
