"""The one training loop for every preset.

The loop follows the preset's step order (``preset.steps``); it knows nothing of any
one model. It writes through a :class:`~ms_gan.train.rundir.RunDir` (options, logs,
stats, samples, plots) and shows a :class:`~ms_gan.train.progress.Progress` line;
periodic evaluation is a callback the caller gives (the CLI passes FCD/KID), so the
loop does not depend on :mod:`ms_gan.eval`.

Nothing is lost on a kill: checkpoints are atomic, and a rerun into the same
directory resumes from the last one with the exact data order and noise stream.
Ctrl-C (and SIGTERM) stop at the next step boundary with a checkpoint of that step
(see :mod:`ms_gan.interrupt`).
"""
import math
import os
import time

import numpy as np

from ms_gan import checkpoint as ckpt_io
from ms_gan import interrupt, kernels, seeds
from ms_gan.errors import UserError
from ms_gan.generate import sample_noise
from ms_gan.train.progress import Progress
from ms_gan.train.rundir import Cadence, RunDir, RunOptions

__all__ = ["Trainer", "RunOptions", "TrainingDiverged", "iteration_inputs", "class_draws", "sample_noise",
           "run_state"]

SUM_KEYS = ("d_loss", "g_loss", "d_loss_real", "d_loss_fake", "n_real_upd", "n_fake_upd", "d_acc_real",
            "d_acc_fake", "g_acc", "n_d", "n_g", "images")


class TrainingDiverged(UserError):
    """A loss became NaN or infinite."""


def iteration_inputs(rng, batch, preset, steps):
    """(fake_inputs, z_g) of one iteration for ``steps.iteration``, noise drawn in the trainer's order.

    ``fake_inputs`` stacks one entry per update that judges fakes: latent vectors, or the fake
    images themselves for recipes whose G makes D's fakes in eval mode. One tensor, not a
    tuple (tuples of tensors would make mindspore.jit recompile every call); noise is stacked
    in NumPy (one host copy, no eager op). The trainer and the benchmark share this function.
    A conditional preset returns ``(fake_inputs, z_g, fake_classes)`` (:func:`class_draws`).
    """
    import mindspore as ms
    from mindspore import ops

    zs = [sample_noise(rng, batch, preset) for token in preset.steps if token in ("d", "d_fake")]
    z_g = ms.Tensor(sample_noise(rng, batch * preset.g_batch_mult, preset))
    # A conditional model also gets its fakes' labels (fake_classes of steps.run), drawn after the noise.
    classes = class_draws(rng, batch, preset, len(zs))
    if not zs:
        fake_inputs = z_g
    elif steps.fakes_given:
        labels = [()] * len(zs) if classes is None else [(classes[0][i],) for i in range(len(zs))]
        fake_inputs = ops.stack([steps.generate(ms.Tensor(z), *labels[i]) for i, z in enumerate(zs)])
    else:
        fake_inputs = ms.Tensor(np.stack(zs))
    return (fake_inputs, z_g) if classes is None else (fake_inputs, z_g, classes)


def class_draws(rng, batch, preset, n_fake):
    """(labels of each fake batch (n_fake, batch), G's labels (batch x g_batch_mult,)) as int32 tensors,
    uniform over the classes, drawn after the noise; None for an unconditional preset (no draw)."""
    import mindspore as ms

    if not preset.num_classes:
        return None
    k = int(preset.num_classes)
    fake = rng.integers(0, k, (max(n_fake, 1), batch)).astype(np.int32)
    n_g = batch * preset.g_batch_mult
    if preset.mode_seeking:   # MSGAN's pairs (i, i + n/2) share their class
        half = rng.integers(0, k, n_g // 2)
        g = np.concatenate([half, half, rng.integers(0, k, n_g - 2 * (n_g // 2))]).astype(np.int32)
    else:
        g = rng.integers(0, k, n_g).astype(np.int32)
    return ms.Tensor(fake), ms.Tensor(g)


def network_diagnostics(net):
    """Scalars worth logging from inside a network: attention gammas and spectral-norm sigmas."""
    from ms_gan.nn.attention import attention_gammas
    from ms_gan.nn.spectral_norm import spectral_norm_sigmas

    values = attention_gammas(net)
    values.update({f"{k}.sigma": float(v) for k, v in spectral_norm_sigmas(net).items()})
    return values


def run_state(meta, preset, max_steps):
    """Where a checkpoint's run stands: 'finished' (all epochs), 'max_steps' (reached it) or 'open'."""
    if int(meta.get("epoch", 0)) >= preset.epochs:
        return "finished"
    if max_steps is not None and int(meta.get("step", 0)) >= max_steps:
        return "max_steps"
    return "open"


class Trainer:
    """Trains one preset into one run directory.

    Args:
        preset: the (overridden) Preset.
        options: the :class:`RunOptions` (recorded in options.json).
        rank, world: this process's rank and the number of data-parallel workers.
        grad_reducers: (G, D) gradient reducers (or factories taking the params) for data parallelism.
        evaluate: ``evaluate(G, epoch) -> dict`` with ``fcd``, ``kid_mean``, ``kid_std``, ``n_generated``,
            ``extractor_sha256`` (and ``protocol``, recorded as ``eval_protocol``), called (G in eval mode)
            every ``options.eval_every`` epochs on rank 0.
        echo: callable for user-facing lines (None: print).
        sink: an extra writer of the run's records and sample grids (rank 0), e.g.
            :class:`ms_gan.train.tensorboard.TensorBoardSink`: ``start(step)``, ``write_record(record)``,
            ``write_grid(images, rows, cols, gap, step)``, ``close()``.
    """

    def __init__(self, preset, options, rank=0, world=1, grad_reducers=(None, None), evaluate=None, echo=None,
                 sink=None):
        self.preset = preset
        self.options = options
        self.seed = int(options.seed)
        self.rank, self.world = rank, world
        self.is_writer = rank == 0
        self.grad_reducers = grad_reducers
        self.evaluate = evaluate
        self.sink = sink if rank == 0 else None
        self.run = RunDir(options.out, writer=self.is_writer, echo=echo)
        self.out = options.out
        self.ckpt_path = self.run.ckpt_path
        self.progress = Progress(options.progress if self.is_writer else False)
        self.ema = None
        self._sums = None
        self._resume_sums = None
        self._grid_fn = None
        self.sample_cadence = Cadence(options.sample_every)
        self.plot_cadence = Cadence(options.plot_every)

    # ------------------------------------------------------------------ setup

    def _build_data(self):
        """The data pipeline; built first so bad data fails before the run directory is touched."""
        from ms_gan.data import ImagePipeline, ImageSpec

        p = self.preset
        self.pipeline = ImagePipeline(self.options.data, ImageSpec(p.image_size, p.channels),
                                      p.batch_size // p.real_batch_div, seed=self.seed, sampling=p.sampling,
                                      drop_remainder=p.drop_remainder, num_shards=self.world, shard_id=self.rank,
                                      labels=bool(p.num_classes))

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
        if self.options.ema:
            from ms_gan.train.ema import EMA

            self.ema = EMA(self.G, self.options.ema)
        self.steps = build_steps(p, self.G, self.D, self.opt_g, self.opt_d, use_jit=self.options.mode == "graph",
                                 grad_reducer_g=reducer_g, grad_reducer_d=reducer_d, ema=self.ema)
        # Noise differs per rank (each rank makes its own fakes), weights and data order do not.
        self.rng = np.random.default_rng([self.seed, seeds.TRAIN_NOISE, self.rank])
        # The grid noise is a function of the seed; the file records it for other tools.
        self.fixed_noise = sample_noise(np.random.default_rng([self.seed, seeds.GRID_NOISE]),
                                        p.grid_rows * p.grid_cols, p)

    def _check_batch_norm(self):
        """BatchNorm1d divides by n - 1: one image per batch fails deep in graph compilation
        (a 100-line error and a stray rank_0/om folder, issue 12), so refuse it before."""
        from mindspore import nn

        p = self.preset
        per_update = p.batch_size // p.real_batch_div
        if per_update >= 2:
            return
        if any(isinstance(c, nn.BatchNorm1d) for net in (self.G, self.D) for _, c in net.cells_and_names()):
            raise UserError(f"--batch-size {p.batch_size} is too small for {p.name}: its BatchNorm needs at least "
                            f"2 images per batch; use --batch-size {2 * p.real_batch_div} or more")

    def _cells(self):
        cells = [self.G, self.D, self.opt_g, self.opt_d]
        return cells + [self.ema] if self.ema is not None else cells

    def save_checkpoint(self, epoch, batch_in_epoch, step, path=None):
        if not self.is_writer:
            return None
        meta = {"preset": self.preset.name, "overrides": self.options.overrides, "epoch": epoch,
                "batch_in_epoch": batch_in_epoch, "step": step, "seed": self.seed,
                "rng": _rng_to_json(self.rng.bit_generator.state), "world": self.world,
                # running sums of a partly done epoch, so its record is exact after a resume
                "epoch_sums": self._sums if batch_in_epoch else None}
        return ckpt_io.save(path or self.ckpt_path, self._cells(), meta)

    def _restore(self, path, params_meta):
        params, meta = params_meta
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
            self.rng = np.random.default_rng([self.seed, seeds.TRAIN_NOISE, self.rank, int(meta["step"])])
        self._resume_sums = meta.get("epoch_sums")
        return int(meta["epoch"]), int(meta["batch_in_epoch"]), int(meta["step"])

    def generate_grid(self):
        """G's output (eval mode) on the fixed grid noise.

        In graph mode through its own compiled function: eager G calls took ~1 s each in a
        process pinned to one core (dcgan_digits8: 1.0-1.2 s vs 10 ms compiled, same output
        bit for bit; bench/NOTES.md attempt 40). The function is compiled while G is in eval
        mode, so it holds the eval-mode graph; the training step's graph is not recompiled.
        """
        import mindspore as ms

        if self._grid_fn is None:
            G = self.G

            def grid_forward(z, *classes):
                return G(z, *classes)

            self._grid_fn = ms.jit(grid_forward) if self.options.mode == "graph" else grid_forward
        self.G.set_train(False)
        try:
            if self.preset.num_classes:  # one class per row (class = row mod classes)
                from ms_gan.generate import grid_classes

                return self._grid_fn(ms.Tensor(self.fixed_noise), ms.Tensor(grid_classes(self.preset)))
            return self._grid_fn(ms.Tensor(self.fixed_noise))
        finally:
            self.G.set_train(True)

    def write_pictures(self, epoch, samples, plots):
        """Queue the sample grids (of G now, labelled ``epoch``) and/or the curves for the output worker;
        returns the grid's network output when samples were made (for the sink), else None."""
        if not self.is_writer:
            return None
        grid = None
        if samples:
            grid = self.generate_grid()
            self.run.write_samples(self.preset, epoch, grid)
            self.sample_cadence.mark()
        if plots:
            self.run.write_plots(self.preset)
            self.plot_cadence.mark()
        return grid

    # ------------------------------------------------------------------ loop

    def fit(self):
        """Train until the preset's epochs (or ``max_steps``) are done; returns a summary dict."""
        p, run = self.preset, self.run
        # Before any work: a damaged options.json or stats.jsonl, other math options, a finished run.
        run.check_compatible(self.options.to_json())
        run.check_logs()
        params_meta = ckpt_io.load(self.ckpt_path) if os.path.isfile(self.ckpt_path) else None
        if params_meta is not None:
            meta = params_meta[1]
            state = run_state(meta, p, self.options.max_steps)
            summary = {"epoch": meta["epoch"], "step": meta["step"], "stopped": "already_" + state, "out": self.out}
            if state == "finished":
                run.echo(f"run in {self.out} is finished at epoch {meta['epoch']}; raise --epochs to extend it")
                return summary
            if state == "max_steps":
                run.echo(f"run in {self.out} stopped at step {meta['step']} (--max-steps "
                         f"{self.options.max_steps}); raise --max-steps or drop it to continue")
                return summary
        self._build_data()
        self._build()
        self._check_batch_norm()
        interrupt.check("during start-up")
        run.lock()
        try:
            try:
                result = self._fit_locked(params_meta)
            except BaseException:
                run.finish(quiet=True)   # the pictures queued so far are written; the error stays the one raised
                raise
            run.finish()
            return result
        finally:
            self.progress.close()
            if self.sink is not None:
                self.sink.close()
            run.unlock()

    def _fit_locked(self, params_meta):
        p, run = self.preset, self.run
        run.write_options(self.options.to_json(), _preset_dict(p))
        run.prepare()
        run.write_fixed_noise(self.fixed_noise)
        epoch, skip, step = 0, 0, 0
        if params_meta is not None:
            epoch, skip, step = self._restore(self.ckpt_path, params_meta)
        run.truncate_logs(step)
        if self.sink is not None:
            self.sink.start(step)
        fallback = kernels.fallback_reason()   # said once, in the first line
        convs = f"; layers: MindSpore's own ops, {fallback}" if fallback else ""
        if params_meta is not None:
            run.log(f"resuming from {self.ckpt_path} at epoch {epoch + 1}, step {step}{convs}")
        else:
            count = f"{self.pipeline.num_samples:,} images"
            # the data's description may already give the count (built-in digits do): say it once
            count = "" if count in self.options.data_description else count + ", "
            run.log(f"training {p.name} on {self.options.data_description} "
                    f"({count}{self.pipeline.batches_per_epoch()} iterations/epoch, mode {self.options.mode}{convs}) "
                    f"into {self.out}")
        interrupt.check("during start-up")
        n_batches = self.pipeline.batches_per_epoch()
        stopped = "complete"
        max_steps = self.options.max_steps
        while epoch < p.epochs:
            dataset = self.pipeline.dataset(epoch, skip)
            sums = {k: 0.0 for k in SUM_KEYS}
            if skip and self._resume_sums:
                sums.update(self._resume_sums)
            self._sums = sums
            t_epoch = time.time()
            i = skip
            iterator = dataset.create_tuple_iterator(num_epochs=1) if dataset is not None else []
            for row in iterator:
                if interrupt.pending():
                    self._stop_interrupted(epoch, i, step)
                real = row[0]
                batch = real.shape[0]
                inputs = iteration_inputs(self.rng, batch, p, self.steps)
                # a conditional model's real labels ride with the real batch (the pipeline's second column)
                real_classes = {"real_classes": row[1]} if p.num_classes else {}
                values = self.steps.run(step, self.rng, real, *inputs, **real_classes).asnumpy()
                step += 1
                i += 1
                current = self._accumulate(sums, values, batch, step, epoch)
                if self.options.log_every and step % self.options.log_every == 0:
                    run.append_stats(dict(kind="step", step=step, epoch=epoch + 1, **current))
                    self._to_sink(dict(kind="step", step=step, epoch=epoch + 1, **current))
                rate = sums["images"] / max(time.time() - t_epoch, 1e-9)
                self.progress.update(epoch + 1, p.epochs, i, n_batches,
                                     f"d={current['d_loss']:.4f} g={current['g_loss']:.4f} {rate:.0f} img/s")
                if self.options.ckpt_every and step % self.options.ckpt_every == 0:
                    with interrupt.deferred():
                        self.save_checkpoint(epoch, i, step)
                if max_steps is not None and step >= max_steps:
                    stopped = "max_steps"
                    break
            if interrupt.pending():
                self._stop_interrupted(epoch, i, step)
            self.progress.close()
            seconds = time.time() - t_epoch
            # A Ctrl-C during the epoch's bookkeeping stops at the next step boundary, after it is all
            # written (else a signal inside the checkpoint's save would skip the final pictures and the
            # epoch's records: tests/cli/test_output_cadence.py caught it with one-second epochs).
            with interrupt.deferred():
                if stopped != "max_steps" or i >= n_batches:
                    epoch += 1
                    skip = 0
                    self._end_epoch(epoch, step, sums, seconds, last=epoch >= p.epochs or stopped == "max_steps")
                else:
                    self.save_checkpoint(epoch, i, step)
                    record = dict(self._epoch_record(sums, epoch + 1, step, seconds), partial=True)
                    run.append_stats(record)
                    grid = self.write_pictures(epoch + 1, samples=True, plots=True)  # an early stop shows images
                    self._to_sink(record, grid)
            if stopped == "max_steps":
                run.log(f"stopped at step {step} (--max-steps); rerun with a larger --max-steps or without it "
                        f"to continue")
                break
        return {"epoch": epoch, "step": step, "stopped": stopped, "out": self.out}

    def _end_epoch(self, epoch, step, sums, seconds, last=False):
        """Checkpoint first, then evaluation: a failing evaluation never loses the epoch's weights.

        The checkpoint is written at every epoch end: it costs ~8 ms on dcgan_digits8 (0.3-0.5% of
        an epoch, bench/NOTES.md attempt 40), and keeps a SIGKILL's loss to at most one epoch.
        Pictures follow their cadences, and always at the ``last`` epoch end of the run."""
        p, run = self.preset, self.run
        record = self._epoch_record(sums, epoch, step, seconds)
        self.save_checkpoint(epoch, 0, step)
        if self.options.keep_checkpoints:
            self.save_checkpoint(epoch, 0, step, run.path("checkpoints", f"epoch_{epoch:04d}.ckpt"))
        best = False
        try:
            best = self._evaluate(epoch, record)
        finally:   # the epoch's record and pictures are written even when evaluation fails
            run.append_stats(record)
            run.log(f"epoch {epoch}/{p.epochs} step {step}: d_loss {record['d_loss']:.4f} "
                    f"g_loss {record['g_loss']:.4f} D acc real {record['d_acc_real']:.3f} "
                    f"fake {record['d_acc_fake']:.3f} | {record['images_per_sec']:.0f} img/s")
            run.append_metrics(record)
            grid = self.write_pictures(epoch, samples=last or self.sample_cadence.due(epoch),
                                       plots=last or self.plot_cadence.due(epoch))
            self._to_sink(record, grid)
        if best:
            self.save_checkpoint(epoch, 0, step, run.path("checkpoints", "best.ckpt"))

    def _to_sink(self, record, grid=None):
        """Hand a stats record (and the sample grid, G's output on the fixed noise) to the sink, if any."""
        if self.sink is None:
            return
        self.sink.write_record(record)
        if grid is not None:
            from ms_gan.models import primary

            p = self.preset
            self.sink.write_grid(primary(grid).asnumpy(), p.grid_rows, p.grid_cols, p.grid_gap, record["step"])

    def _stop_interrupted(self, epoch, i, step):
        """At a step boundary after Ctrl-C/SIGTERM: checkpoint this step (unless it is the last one's),
        write the final pictures (samples of G now, labelled with the epoch under way, and the curves), stop."""
        self.progress.close()
        interrupt.clear()   # so the files below are moved into place; a new signal aborts them cleanly
        if step and self.is_writer:
            self.save_checkpoint(epoch, i, step)
            self.write_pictures(epoch + (1 if i else 0), samples=True, plots=True)
        raise interrupt.Interrupted(f"at epoch {epoch + 1} step {step}")

    def _evaluate(self, epoch, record):
        """The evaluation callback every ``eval_every`` epochs (rank 0); True when this is the best FCD so far."""
        every = self.options.eval_every
        if not (every and self.evaluate is not None and self.is_writer and epoch % every == 0):
            return False
        self.G.set_train(False)
        try:
            result = self.evaluate(self.G, epoch)
        finally:
            self.G.set_train(True)
        record.update(fcd=result["fcd"], kid_mean=result["kid_mean"], kid_std=result["kid_std"],
                      eval_n=result["n_generated"], eval_extractor_sha256=result["extractor_sha256"])
        if result.get("protocol") is not None:   # what the numbers depend on: extractor, shape, n, split, seed
            record["eval_protocol"] = result["protocol"]
        earlier = [r["fcd"] for r in self.run.epoch_records() if r.get("fcd") is not None]
        self.run.log(f"epoch {epoch}: FCD {result['fcd']:.3f}, KID {result['kid_mean']:.4f} "
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

    def _epoch_record(self, sums, epoch, step, seconds):
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


def _preset_dict(preset):
    from ms_gan import presets

    return presets.to_dict(preset)


def _rng_to_json(state):
    """NumPy's generator state as plain JSON (its 128-bit integers become Python ints)."""
    import json

    return json.loads(json.dumps(state, default=int))
