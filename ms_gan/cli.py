"""``ms-gan``: the command line. Parses flags, turns user mistakes into one-line errors.

Every sub-command is a small function that calls into the library; no model logic
lives here. User mistakes (:class:`ms_gan.errors.UserError`, bad flags) print
``ms-gan: error: ...`` on one line and exit with code 2, without a traceback.
"""
import argparse
import math
import os
import sys

from ms_gan.errors import UserError

EXIT_USER_ERROR = 2


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors."""

    def error(self, message):
        raise UserError(f"{message} (see '{self.prog} --help')")


def _number(kind, minimum=None, strict=False):
    """An argparse type: ``kind`` (int/float), finite, and >= (or > if ``strict``) ``minimum``."""

    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected {'a whole number' if kind is int else 'a number'}, got {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be finite, got {text}")
        if minimum is not None and (value <= minimum if strict else value < minimum):
            bound = f"greater than {minimum}" if strict else f"at least {minimum}"
            raise argparse.ArgumentTypeError(f"must be {bound}, got {text}")
        return value

    return parse


_positive_int = _number(int, 1)
_non_negative_int = _number(int, 0)
_positive_float = _number(float, 0, strict=True)
_float = _number(float)


def _add_no_ema_flag(p):
    p.add_argument("--no-ema", action="store_true", help="use G's raw weights even if the checkpoint has an EMA")


def _add_device_flags(p, with_mode=True):
    g = p.add_argument_group("device")
    g.add_argument("--device", default="CPU", help="CPU, GPU or Ascend (default CPU)")
    g.add_argument("--device-id", type=_non_negative_int, default=None, help="device index (GPU/Ascend)")
    if with_mode:
        g.add_argument("--mode", choices=("graph", "pynative"), default="graph",
                       help="graph: steps compiled with mindspore.jit (default); pynative: eager")
    g.add_argument("--threads", type=_positive_int, default=None,
                   help="CPU kernel threads (default: the preset's choice, else the cores this process may "
                        "use); 1 also keeps the process on one core")


def _setup_device(args, seed=None, preset=None):
    from ms_gan import device

    mode = getattr(args, "mode", "graph")
    # A preset's thread choice is measured for graph mode; PyNative's own queue threads need the cores.
    threads = args.threads or (preset.cpu_threads if preset is not None and mode == "graph" else 0) or None
    return device.setup(args.device, args.device_id, mode, threads, seed=seed)


# ---------------------------------------------------------------------------- train

_OVERRIDE_FLAGS = (
    ("--epochs", "epochs", _positive_int, "epochs to train"),
    ("--batch-size", "batch_size", _positive_int, "images per batch (per worker)"),
    ("--lr-g", "lr_g", _positive_float, "G learning rate"),
    ("--lr-d", "lr_d", _positive_float, "D learning rate"),
    ("--beta1-g", "beta1_g", _float, "G Adam beta1"),
    ("--beta2-g", "beta2_g", _float, "G Adam beta2"),
    ("--beta1-d", "beta1_d", _float, "D Adam beta1"),
    ("--beta2-d", "beta2_d", _float, "D Adam beta2"),
    ("--z-dim", "z_dim", _positive_int, "latent dimension (changes the networks)"),
    ("--d-l2-coef", "d_l2_coef", _float, "coefficient of the L2 penalty on D's chosen kernels"),
    ("--sn-iterations", "sn_iterations", _positive_int, "power iterations per forward in spectral norm"),
    ("--attention-every", "attention_every", _positive_int, "write an attention figure every N epochs (SAGAN)"),
    # the training objective (ms_gan.train.objective); recorded with the overrides, so a resume must repeat them
    ("--loss", "loss", str, "bce (D ends in a sigmoid), bce_logits, ns, hinge, lsgan or wasserstein"),
    ("--gp", "gp", _number(float, 0), "WGAN-GP weight lambda, e.g. 10 (0: off)"),
    ("--r1", "r1", _number(float, 0), "R1 weight gamma on reals (0: off)"),
    ("--r1-every", "r1_every", _positive_int, "lazy R1: every K iterations, scaled by K"),
    ("--n-critic", "n_critic", _positive_int, "D updates per G update"),
    ("--diffaugment", "diffaugment", str, "DiffAugment policies: a subset of color,translation,cutout"),
)


def cmd_train(args):
    from ms_gan import presets
    from ms_gan.data import describe_source

    preset = presets.get(args.preset)
    overrides = {dest: getattr(args, dest) for _, dest, _, _ in _OVERRIDE_FLAGS if getattr(args, dest) is not None}
    preset = presets.override(preset, **overrides)
    from ms_gan.train.objective import check_penalties

    check_penalties(preset, args.mode)
    data = args.data if args.data is not None else "builtin"
    description = describe_source(data)  # validates the path before MindSpore starts
    out = args.out or os.path.join("runs", preset.name)
    if args.ema is not None and not args.ema < 1.0:
        raise UserError(f"--ema must be a decay in (0, 1), e.g. 0.999; got {args.ema}")
    eval_data = args.eval_data or data
    if args.eval_every:
        from ms_gan.data import resolve_source

        if resolve_source(eval_data)[0] not in ("builtin", "mnist"):
            raise UserError("--eval-every measures digits with a digit classifier: give --eval-data builtin "
                            "or an MNIST folder")
    if args.resume and not os.path.isfile(os.path.join(out, "checkpoints", "latest.ckpt")):
        raise UserError(f"--resume: {out} has no checkpoints/latest.ckpt to resume from")
    # The device must be chosen before communication.init() (MindSpore refuses set_device afterwards).
    resolved = _setup_device(args, seed=args.seed, preset=preset)
    rank, world, reducers = 0, 1, (None, None)
    if args.distributed:
        from ms_gan.train import distributed

        rank, world, reducers = distributed.init()
    options = {
        "preset": preset.name, "overrides": overrides, "data": os.path.abspath(data) if data != "builtin" else data,
        "data_description": description, "seed": args.seed, "device": args.device, "mode": args.mode,
        "threads": resolved.get("threads"),
        "max_steps": args.max_steps, "ckpt_every": args.ckpt_every, "workers": world, "ema": args.ema,
        "resolved_preset": presets.to_dict(preset),
    }
    from ms_gan.train.trainer import Trainer

    trainer = Trainer(preset, data, out, options, seed=args.seed, mode=args.mode, max_steps=args.max_steps,
                      ckpt_every=args.ckpt_every, log_every=args.log_every, keep_checkpoints=args.keep_checkpoints,
                      rank=rank, world=world, grad_reducers=reducers,
                      progress=False if args.no_progress else None, ema_decay=args.ema,
                      eval_every=args.eval_every, eval_data=eval_data, eval_n=args.eval_n)
    trainer.fit()
    if rank == 0:
        print(f"run directory: {out}  (samples: {os.path.join(out, 'samples', 'grid_latest.png')}, "
              f"checkpoint: {os.path.join(out, 'checkpoints', 'latest.ckpt')})")
    return 0


# ---------------------------------------------------------------------------- sample


def _grid_shape(n, rows):
    rows = rows or max(1, int(math.floor(math.sqrt(n))))
    return rows, int(math.ceil(n / rows))


def cmd_sample(args):
    import numpy as np

    from ms_gan import viz
    from ms_gan.generate import load_noise, noise, run_generator

    if (args.ckpt is None) == (args.mindir is None):
        raise UserError("give exactly one of --ckpt (checkpoint or run directory) and --mindir (exported graph)")
    if not args.out.lower().endswith((".png", ".jpg", ".jpeg", ".npy")):
        raise UserError(f"--out {args.out!r} must end in .png, .jpg or .npy")
    _setup_device(args)
    if args.mindir is not None:
        from ms_gan.export import load_mindir

        G, preset = load_mindir(args.mindir)
    else:
        from ms_gan.generate import load_generator

        preset, G, _ = load_generator(args.ckpt, use_ema=not args.no_ema)
    z = load_noise(args.noise, preset) if args.noise else noise(preset, args.n, args.seed)
    images = run_generator(G, z)
    if args.out.lower().endswith(".npy"):
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        np.save(args.out, images.astype(np.float32))
    else:
        rows, cols = _grid_shape(len(images), args.rows)
        viz.save_grid(images, args.out, rows, cols, preset.grid_gap)
    print(f"wrote {len(images)} images of {preset.name} to {args.out}")
    return 0


# ---------------------------------------------------------------------------- interpolate


def cmd_interpolate(args):
    import numpy as np

    from ms_gan import viz
    from ms_gan.generate import interpolate, load_generator, noise, run_generator

    if args.steps < 2:
        raise UserError("--steps must be at least 2 (the two endpoints)")
    _setup_device(args)
    preset, G, _ = load_generator(args.ckpt, use_ema=not args.no_ema)
    ends = noise(preset, 2 * args.rows, args.seed)
    z = np.concatenate([interpolate(ends[2 * r], ends[2 * r + 1], args.steps, args.slerp) for r in range(args.rows)])
    images = run_generator(G, z)
    viz.save_grid(images, args.out, args.rows, args.steps, preset.grid_gap)
    kind = "spherical" if args.slerp else "linear"
    print(f"wrote {args.rows} {kind} interpolation row(s) of {args.steps} steps to {args.out}")
    return 0


# ---------------------------------------------------------------------------- attention


def cmd_attention(args):
    import math as _math

    import mindspore as ms

    from ms_gan import viz
    from ms_gan.generate import load_generator, noise

    _setup_device(args)
    preset, G, _ = load_generator(args.ckpt, use_ema=not args.no_ema)
    if not preset.has_attention:
        raise UserError(f"preset {preset.name} has no self-attention; use a sagan64 checkpoint")
    z = noise(preset, args.n, args.seed)
    out = G(ms.Tensor(z))
    images = out[0].asnumpy()
    maps = out[args.block].asnumpy() if 1 <= args.block < len(out) else None
    if maps is None:
        raise UserError(f"--block must be 1..{len(out) - 1} for {preset.name}")
    side = int(round(_math.sqrt(maps.shape[-1])))
    row, col = args.query if args.query else (side // 2 - 1, side // 2 - 1)
    if not (0 <= row < side and 0 <= col < side):
        raise UserError(f"--query {row} {col} is outside the {side}x{side} attention map")
    viz.attention_figure(images, maps, (row, col), side, args.out, n=args.n)
    print(f"wrote attention of pixel ({row}, {col}) of the {side}x{side} map (block {args.block}) to {args.out}")
    return 0


# ---------------------------------------------------------------------------- presets


def cmd_presets(args):
    from ms_gan import presets

    width = max(len(n) for n in presets.names())
    for name in presets.names():
        p = presets.get(name)
        print(f"{name:<{width}}  {p.channels}x{p.image_size}x{p.image_size}  {p.summary}")
    return 0


# ---------------------------------------------------------------------------- parser


def build_parser():
    parser = _Parser(prog="ms-gan", description="Train, sample, evaluate and export GANs with MindSpore.")
    from ms_gan import __version__

    parser.add_argument("--version", action="version", version=f"ms_gan {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("train", help="train a preset into a run directory")
    p.add_argument("--preset", required=True, help="preset name (ms-gan presets lists them)")
    p.add_argument("--data", default=None,
                   help="'builtin' (default), an MNIST IDX folder, an image folder or a .npy/.npz file")
    p.add_argument("--out", default=None, help="run directory (default runs/PRESET); an existing one is resumed")
    for flag, dest, typ, text in _OVERRIDE_FLAGS:
        p.add_argument(flag, dest=dest, type=typ, default=None, help=f"{text} (default: the preset's)")
    p.add_argument("--max-steps", type=_positive_int, default=None, help="stop after this many iterations in total")
    p.add_argument("--seed", type=_non_negative_int, default=0, help="seed of weights, noise and data order")
    p.add_argument("--resume", action="store_true", help="require an existing checkpoint in --out and continue it")
    p.add_argument("--ckpt-every", type=_non_negative_int, default=0,
                   help="also checkpoint every N iterations (default: at epoch ends)")
    p.add_argument("--log-every", type=_non_negative_int, default=50,
                   help="write a per-step record to stats.jsonl every N iterations (0: off)")
    p.add_argument("--keep-checkpoints", action="store_true", help="keep every epoch's checkpoint")
    p.add_argument("--ema", type=_number(float, 0, strict=True), default=None, metavar="DECAY",
                   help="keep an exponential moving average of G's weights (e.g. 0.999); used by sample/eval/export")
    p.add_argument("--eval-every", type=_non_negative_int, default=0, metavar="N",
                   help="every N epochs compute FCD and KID (logged in stats.jsonl) and keep best.ckpt by FCD")
    p.add_argument("--eval-data", default=None,
                   help="reference digits for --eval-every: 'builtin' or an MNIST folder (default: --data)")
    p.add_argument("--eval-n", type=_positive_int, default=2000, help="generated images per evaluation")
    p.add_argument("--distributed", action="store_true", help="data-parallel worker started by msrun")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_device_flags(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("sample", help="generate an image grid (or .npy) from a checkpoint or MindIR")
    p.add_argument("--ckpt", default=None, help="checkpoint file or run directory (its latest checkpoint)")
    p.add_argument("--mindir", default=None, help="an exported generator (.mindir)")
    p.add_argument("--n", type=_positive_int, default=64, help="number of images (default 64)")
    p.add_argument("--seed", type=_non_negative_int, default=0, help="noise seed")
    p.add_argument("--noise", default=None, help="a .npy of latent vectors (N, z_dim) to use instead")
    p.add_argument("--rows", type=_positive_int, default=None, help="grid rows (default: square)")
    p.add_argument("--out", required=True, help="output .png/.jpg grid, or .npy for float32 (N,C,H,W) in [-1,1]")
    _add_no_ema_flag(p)
    _add_device_flags(p, with_mode=False)
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("interpolate", help="decode evenly spaced points between latent vectors into a strip")
    p.add_argument("--ckpt", required=True, help="checkpoint file or run directory")
    p.add_argument("--steps", type=_positive_int, default=10, help="points per row, endpoints included")
    p.add_argument("--rows", type=_positive_int, default=1, help="number of latent pairs")
    p.add_argument("--seed", type=_non_negative_int, default=0, help="seed of the endpoint latent vectors")
    p.add_argument("--slerp", action="store_true", help="spherical interpolation (for Gaussian noise)")
    p.add_argument("--out", required=True, help="output image")
    _add_no_ema_flag(p)
    _add_device_flags(p, with_mode=False)
    p.set_defaults(func=cmd_interpolate)

    p = sub.add_parser("attention", help="generated images above the attention map of one query pixel (SAGAN)")
    p.add_argument("--ckpt", required=True, help="checkpoint file or run directory of a preset with attention")
    p.add_argument("--n", type=_positive_int, default=4, help="images to show (default 4)")
    p.add_argument("--seed", type=_non_negative_int, default=0, help="noise seed")
    p.add_argument("--block", type=_positive_int, default=1, help="which attention block of G (1 = 16x16 map)")
    p.add_argument("--query", type=_non_negative_int, nargs=2, metavar=("ROW", "COL"), default=None,
                   help="query pixel in the attention map (default: the centre, (7, 7) of 16x16 as the article)")
    p.add_argument("--out", required=True, help="output image")
    _add_no_ema_flag(p)
    _add_device_flags(p, with_mode=False)
    p.set_defaults(func=cmd_attention)

    p = sub.add_parser("presets", help="list the presets")
    p.set_defaults(func=cmd_presets)

    for extra in _extra_commands():
        extra(sub)
    return parser


# Modules that add sub-commands: each defines ``register(subparsers)`` which adds its
# parsers (built with _Parser, so errors stay one line) and sets ``func``.
COMMAND_MODULES = ("ms_gan.export", "ms_gan.eval.cli", "ms_gan.convert")


def _extra_commands():
    """``register`` functions of the command modules that exist in this installation."""
    import importlib

    found = []
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:  # a real missing dependency inside the module
                raise
            continue
        found.append(module.register)
    return found


def main(argv=None):
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if not getattr(args, "command", None):
            parser.print_help()
            return EXIT_USER_ERROR
        return args.func(args) or 0
    except UserError as exc:
        sys.stderr.write(f"ms-gan: error: {exc}\n")
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        sys.stderr.write("ms-gan: interrupted; rerun the same command to resume from the last checkpoint\n")
        return 130


if __name__ == "__main__":
    sys.exit(main())
