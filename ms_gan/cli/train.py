"""``ms-gan train``: train a preset into a run directory (resumed when it holds a run)."""
import os
import sys

from ms_gan.cli import common
from ms_gan.errors import UserError

# Flags that override a preset field (recorded as the run's "overrides"); --epochs only
# lengthens a run and may change on resume, the others change its math.
OVERRIDE_FLAGS = (
    ("--epochs", "epochs", common.positive_int, "epochs to train"),
    ("--batch-size", "batch_size", common.positive_int, "images per batch (per worker)"),
    ("--lr-g", "lr_g", common.positive_float, "G learning rate"),
    ("--lr-d", "lr_d", common.positive_float, "D learning rate"),
    ("--beta1-g", "beta1_g", common.any_float, "G Adam beta1"),
    ("--beta2-g", "beta2_g", common.any_float, "G Adam beta2"),
    ("--beta1-d", "beta1_d", common.any_float, "D Adam beta1"),
    ("--beta2-d", "beta2_d", common.any_float, "D Adam beta2"),
    ("--z-dim", "z_dim", common.positive_int, "latent dimension (changes the networks)"),
    ("--d-l2-coef", "d_l2_coef", common.any_float, "coefficient of the L2 penalty on D's chosen kernels"),
    ("--sn-iterations", "sn_iterations", common.positive_int, "power iterations per forward in spectral norm"),
    ("--attention-every", "attention_every", common.positive_int, "write an attention figure every N epochs (SAGAN)"),
    # the training objective (ms_gan.train.objective)
    ("--loss", "loss", str, "bce (D ends in a sigmoid), bce_logits, ns, hinge, lsgan or wasserstein"),
    ("--gp", "gp", common.number(float, 0), "WGAN-GP weight lambda, e.g. 10 (0: off)"),
    ("--r1", "r1", common.number(float, 0), "R1 weight gamma on reals (0: off)"),
    ("--r1-every", "r1_every", common.positive_int, "lazy R1: every K iterations, scaled by K"),
    ("--n-critic", "n_critic", common.positive_int, "D updates per G update"),
    ("--diffaugment", "diffaugment", str, "DiffAugment policies: a subset of color,translation,cutout"),
    ("--mode-seeking", "mode_seeking", common.any_float,
     "MSGAN mode-seeking weight: G is rewarded for images that differ as their noises do (0: off)"),
)


def register(sub):
    p = sub.add_parser("train", help="train a preset into a run directory")
    p.add_argument("--preset", required=True, help="preset name (ms-gan presets lists them)")
    p.add_argument("--data", default=None,
                   help="'builtin' (default), an MNIST IDX folder, an image folder or a .npy/.npz file")
    p.add_argument("--out", default=None, help="run directory (default runs/PRESET); an existing one is resumed")
    for flag, dest, typ, text in OVERRIDE_FLAGS:
        p.add_argument(flag, dest=dest, type=typ, default=None, help=f"{text} (default: the preset's)")
    p.add_argument("--conditional", action="store_true",
                   help="class-conditional G and projection D (conv presets); classes from the data's labels")
    p.add_argument("--max-steps", type=common.positive_int, default=None,
                   help="stop after this many iterations in total")
    p.add_argument("--seed", type=common.non_negative_int, default=0, help="seed of weights, noise and data order")
    p.add_argument("--resume", action="store_true", help="require an existing checkpoint in --out and continue it")
    p.add_argument("--ckpt-every", type=common.non_negative_int, default=0,
                   help="also checkpoint every N iterations (default: at epoch ends)")
    p.add_argument("--sample-every", type=_cadence, default="1", metavar="N|Ns",
                   help="write the sample grids every N epochs, or at the first epoch end N seconds after the last "
                        "(e.g. 30s); 0: only at the end. Always at the end of the run and on Ctrl-C (default: 1)")
    p.add_argument("--plot-every", type=_cadence, default="60s", metavar="N|Ns",
                   help="redraw plots/losses.png and accuracy.png every N epochs or N seconds, as --sample-every "
                        "(default: 60s)")
    p.add_argument("--log-every", type=common.non_negative_int, default=50,
                   help="write a per-step record to stats.jsonl every N iterations (0: off)")
    p.add_argument("--keep-checkpoints", action="store_true", help="keep every epoch's checkpoint")
    p.add_argument("--ema", type=common.number(float, 0, strict=True), default=None, metavar="DECAY",
                   help="keep an exponential moving average of G's weights (e.g. 0.999); used by sample/eval/export")
    p.add_argument("--eval-every", type=common.non_negative_int, default=0, metavar="N",
                   help="every N epochs compute FCD and KID (logged in stats.jsonl) and keep best.ckpt by FCD")
    p.add_argument("--eval-data", default=None,
                   help="reference images for --eval-every, any source read at the preset's shape (default: --data)")
    p.add_argument("--eval-n", type=common.positive_int, default=2000, help="generated images per evaluation")
    p.add_argument("--classifier", default=None, metavar="FILE",
                   help="classifier for --eval-every of the preset's size and channels (default: the shipped one, "
                        "for the built-in digits at 8x8 gray; else 'ms-gan train-classifier --data D --preset P "
                        "--out FILE')")
    p.add_argument("--tensorboard", action="store_true",
                   help="also write TensorBoard event files (scalars, sample grids) to OUT/tensorboard "
                        "(needs pip install -e '.[tensorboard]'); may change on resume")
    p.add_argument("--distributed", action="store_true", help="data-parallel worker started by msrun")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    common.add_device_flags(p)
    p.set_defaults(func=run)


def _cadence(text):
    """An argparse type for --sample-every/--plot-every: ``N`` epochs or ``Ns`` seconds, kept as text."""
    import argparse

    from ms_gan.train.rundir import Cadence

    try:
        cadence = Cadence(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return f"{cadence.count}{'s' if cadence.seconds else ''}"


def _periodic_evaluation(preset, eval_data, eval_n, seed, classifier):
    """The loop's evaluation callback: FCD and KID of G on ``eval_data`` with the classifier (and their protocol)."""

    def evaluate(G, epoch):
        from ms_gan.eval.evaluate import quick_fcd_kid

        return quick_fcd_kid(G, preset, eval_data, eval_n, seed=seed, classifier=classifier)

    return evaluate


def _conditional(preset, overrides, data, asked):
    """The preset made conditional with the data's number of classes (recorded as overrides), before any work."""
    from ms_gan import presets
    from ms_gan.data.pipeline import class_labels

    overrides = dict(overrides, conditional=True) if asked and not preset.conditional else dict(overrides)
    presets.override(preset, **overrides)   # refuses families without a conditional form first
    overrides["num_classes"] = class_labels(data)[1]
    return presets.override(presets.get(preset.name), **overrides), overrides


def run(args):
    from ms_gan import presets
    from ms_gan.data import ImageSpec, describe_source

    if args.tensorboard:   # the missing extra is reported before any work
        from ms_gan.train.tensorboard import check_available

        check_available()
    preset = presets.get(args.preset)
    overrides = {dest: getattr(args, dest) for _, dest, _, _ in OVERRIDE_FLAGS if getattr(args, dest) is not None}
    preset = presets.override(preset, **overrides)
    from ms_gan.train.objective import check_penalties

    check_penalties(preset)
    data = args.data if args.data is not None else "builtin"
    # Validates the path before MindSpore starts; says which image sizes are resized (logged by the trainer).
    description = describe_source(data, ImageSpec(preset.image_size, preset.channels))
    if args.conditional or preset.conditional:
        preset, overrides = _conditional(preset, overrides, data, args.conditional)
    out = args.out or os.path.join("runs", preset.name)
    common.check_output_dir(out)
    if args.ema is not None and not args.ema < 1.0:
        raise UserError(f"--ema must be a decay in (0, 1), e.g. 0.999; got {args.ema}")
    ema = args.ema if args.ema is not None else (preset.ema or None)   # a preset may keep an EMA by default
    eval_data = args.eval_data or data
    if args.eval_every:
        from ms_gan.eval.evaluate import check_classifier

        # Before any network is built: the classifier takes G's size and channels and the eval data's classes.
        _, warnings = check_classifier(eval_data, args.classifier, preset.image_size, preset.channels,
                                       "--eval-data" if args.eval_data else "--data")
        for warning in warnings:
            sys.stderr.write(f"ms-gan: warning: {warning}\n")
    elif args.classifier is not None:
        raise UserError("--classifier is the feature extractor of --eval-every: add --eval-every N")
    if args.resume and not os.path.isfile(os.path.join(out, "checkpoints", "latest.ckpt")):
        raise UserError(f"--resume: {out} has no checkpoints/latest.ckpt to resume from")
    # The device must be chosen before communication.init() (MindSpore refuses set_device afterwards).
    resolved = common.setup_device(args, seed=args.seed, preset=preset)
    rank, world, reducers = 0, 1, (None, None)
    if args.distributed:
        from ms_gan.train import distributed

        rank, world, reducers = distributed.init()
    from ms_gan.train.trainer import RunOptions, Trainer

    options = RunOptions(
        preset=preset.name, out=out, data=common.abspath_or_builtin(data), data_description=description,
        overrides=overrides, seed=args.seed, device=args.device, mode=args.mode, threads=resolved.get("threads"),
        workers=world, max_steps=args.max_steps, ckpt_every=args.ckpt_every, sample_every=args.sample_every,
        plot_every=args.plot_every, log_every=args.log_every,
        keep_checkpoints=args.keep_checkpoints, ema=ema, eval_every=args.eval_every,
        progress=False if args.no_progress else None, tensorboard=args.tensorboard)
    evaluate = _periodic_evaluation(preset, eval_data, args.eval_n, args.seed, args.classifier) if args.eval_every else None
    sink = None
    if args.tensorboard and rank == 0:
        from ms_gan.train.tensorboard import TensorBoardSink

        sink = TensorBoardSink(out)
    result = Trainer(preset, options, rank=rank, world=world, grad_reducers=reducers, evaluate=evaluate,
                     sink=sink).fit()
    if rank == 0 and result["stopped"] in ("complete", "max_steps"):
        print(f"run directory: {out}  (samples: {os.path.join(out, 'samples', 'grid_latest.png')}, "
              f"checkpoint: {os.path.join(out, 'checkpoints', 'latest.ckpt')})")
    return 0
