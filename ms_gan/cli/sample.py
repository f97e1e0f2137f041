"""``ms-gan sample``, ``interpolate`` and ``attention``: pictures from a trained generator."""
from ms_gan.cli import common
from ms_gan.errors import UserError

SAMPLE_SUFFIXES = common.IMAGE_SUFFIXES + (".npy",)


def register(sub):
    p = sub.add_parser("sample", help="generate an image grid (or .npy) from a checkpoint or MindIR")
    common.add_generator_source(p)
    p.add_argument("--n", type=common.positive_int, default=None,
                   help="number of images (default 64; with --per-class, images per class, default 10)")
    p.add_argument("--noise", default=None, help="a .npy of latent vectors (N, z_dim) to use instead")
    p.add_argument("--rows", type=common.positive_int, default=None, help="grid rows (default: square)")
    _add_class_flag(p, "conditional models: every image of this class (default: the classes in turn)")
    p.add_argument("--per-class", action="store_true",
                   help="conditional models: one row per class, --n images per row (default 10), the same "
                        "noise down each column")
    _add_seed_out_device(p, "noise seed", "output .png/.jpg grid, or .npy for float32 (N,C,H,W) in [-1,1]")
    p.set_defaults(func=sample)

    p = sub.add_parser("interpolate", help="decode evenly spaced points between latent vectors into a strip")
    p.add_argument("--ckpt", required=True, help="checkpoint file or run directory")
    common.add_no_ema_flag(p)
    p.add_argument("--steps", type=common.positive_int, default=10, help="points per row, endpoints included")
    p.add_argument("--rows", type=common.positive_int, default=1, help="number of latent pairs")
    p.add_argument("--slerp", action="store_true", help="spherical interpolation (for Gaussian noise)")
    _add_class_flag(p, "conditional models: interpolate within this class (default: row r shows class r mod K)")
    _add_seed_out_device(p, "seed of the endpoint latent vectors", "output image (.png or .jpg)")
    p.set_defaults(func=interpolate)

    p = sub.add_parser("attention", help="generated images above the attention map of one query pixel (SAGAN)")
    p.add_argument("--ckpt", required=True, help="checkpoint file or run directory of a preset with attention")
    common.add_no_ema_flag(p)
    p.add_argument("--n", type=common.positive_int, default=4, help="images to show (default 4)")
    p.add_argument("--block", type=common.positive_int, default=1, help="which attention block of G (1 = 16x16 map)")
    p.add_argument("--query", type=common.non_negative_int, nargs=2, metavar=("ROW", "COL"), default=None,
                   help="query pixel in the attention map (default: the centre, (7, 7) of 16x16 as the article)")
    _add_seed_out_device(p, "noise seed", "output image (.png or .jpg)")
    p.set_defaults(func=attention)


def _add_class_flag(p, text):
    p.add_argument("--class", dest="class_", type=common.non_negative_int, default=None, metavar="K", help=text)


def _classes(preset, n, class_, rows=None):
    """Class labels (n,) for a conditional G: all ``class_``, or ``rows`` rows of one class each
    (row r: class r mod K), or the classes in turn; None for an unconditional G (``--class`` refused)."""
    import numpy as np

    from ms_gan.generate import balanced_classes, check_class

    if class_ is not None:
        return np.full(n, check_class(preset, class_), np.int32)
    if rows and preset.num_classes:
        return (np.arange(n) // (n // rows) % preset.num_classes).astype(np.int32)
    return balanced_classes(preset, n)


def _add_seed_out_device(p, seed_help, out_help):
    p.add_argument("--seed", type=common.non_negative_int, default=0, help=seed_help)
    p.add_argument("--out", required=True, help=out_help)
    common.add_device_flags(p, with_mode=False)


def sample(args):
    from ms_gan import checkpoint as ckpt_io
    from ms_gan import viz
    from ms_gan.generate import check_count, check_one_source, load_generator, load_mindir, load_noise, noise, \
        run_generator

    check_one_source(args.ckpt, args.mindir)
    common.check_output_file(args.out, "--out", SAMPLE_SUFFIXES)
    n = args.n or (10 if args.per_class else 64)
    check_count(n)
    if args.per_class and (args.class_ is not None or args.noise or args.rows):
        raise UserError("--per-class makes one row per class: drop --class, --noise and --rows")
    common.setup_device(args)
    if args.mindir is not None:
        G, preset = load_mindir(args.mindir)
    else:
        preset, G, _ = load_generator(args.ckpt, use_ema=not args.no_ema)
    rows = args.rows
    if args.per_class:
        if not preset.num_classes:
            raise UserError(f"--per-class: {preset.name} is not a class-conditional model (train one with "
                            f"--conditional)")
        import numpy as np

        check_count(n * preset.num_classes, "--n x classes")
        rows = preset.num_classes
        z = np.tile(noise(preset, n, args.seed), (rows, 1))   # the same noise down each column
    else:
        z = load_noise(args.noise, preset) if args.noise else noise(preset, n, args.seed)
    images = run_generator(G, z, classes=_classes(preset, len(z), args.class_, rows if args.per_class else None))
    if args.out.lower().endswith(".npy"):
        import numpy as np

        ckpt_io.write_npy(args.out, images.astype(np.float32))
    else:
        rows, cols = common.grid_shape(len(images), rows)
        viz.save_grid(images, args.out, rows, cols, preset.grid_gap)
    print(f"wrote {len(images)} images of {preset.name} to {args.out}")
    return 0


def interpolate(args):
    import numpy as np

    from ms_gan import viz
    from ms_gan.generate import check_count, interpolate as between, load_generator, noise, run_generator

    if args.steps < 2:
        raise UserError("--steps must be at least 2 (the two endpoints)")
    common.check_output_file(args.out, "--out", common.IMAGE_SUFFIXES)
    check_count(args.rows * args.steps, "--rows x --steps")
    common.setup_device(args)
    preset, G, _ = load_generator(args.ckpt, use_ema=not args.no_ema)
    ends = noise(preset, 2 * args.rows, args.seed)
    z = np.concatenate([between(ends[2 * r], ends[2 * r + 1], args.steps, args.slerp) for r in range(args.rows)])
    images = run_generator(G, z, classes=_classes(preset, len(z), args.class_, args.rows))
    viz.save_grid(images, args.out, args.rows, args.steps, preset.grid_gap)
    kind = "spherical" if args.slerp else "linear"
    print(f"wrote {args.rows} {kind} interpolation row(s) of {args.steps} steps to {args.out}")
    return 0


def attention(args):
    import math

    import mindspore as ms

    from ms_gan import viz
    from ms_gan.generate import check_count, load_generator, noise

    common.check_output_file(args.out, "--out", common.IMAGE_SUFFIXES)
    check_count(args.n)
    common.setup_device(args)
    preset, G, _ = load_generator(args.ckpt, use_ema=not args.no_ema)
    if not preset.has_attention:
        raise UserError(f"preset {preset.name} has no self-attention; use a sagan64 checkpoint")
    z = noise(preset, args.n, args.seed)
    out = G(ms.Tensor(z))
    images = out[0].asnumpy()
    maps = out[args.block].asnumpy() if 1 <= args.block < len(out) else None
    if maps is None:
        raise UserError(f"--block must be 1..{len(out) - 1} for {preset.name}")
    side = int(round(math.sqrt(maps.shape[-1])))
    row, col = args.query if args.query else (side // 2 - 1, side // 2 - 1)
    if not (0 <= row < side and 0 <= col < side):
        raise UserError(f"--query {row} {col} is outside the {side}x{side} attention map")
    viz.attention_figure(images, maps, (row, col), side, args.out, n=args.n)
    print(f"wrote attention of pixel ({row}, {col}) of the {side}x{side} map (block {args.block}) to {args.out}")
    return 0
