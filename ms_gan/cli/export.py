"""``ms-gan export``: G (or D) of a checkpoint to MindIR or ONNX."""
import os

from ms_gan.cli import common
from ms_gan.errors import UserError


def register(sub):
    from ms_gan.export import FORMATS

    p = sub.add_parser("export", help="export G (or D) of a checkpoint to MindIR or ONNX")
    p.add_argument("--ckpt", required=True, help="checkpoint file or run directory (its latest checkpoint)")
    common.add_no_ema_flag(p)
    p.add_argument("--format", type=str.upper, choices=FORMATS, default="MINDIR",
                   help="MINDIR (default, dynamic batch) or ONNX (needs the optional onnx package)")
    p.add_argument("--out", default=None, help="output file (default PRESET_NET.mindir/.onnx); "
                                               "a FILE.json with its metadata is written next to it")
    p.add_argument("--net", type=str.lower, choices=("g", "d"), default="g",
                   help="g: the generator, input noise (N, z_dim) (default); d: the discriminator, "
                        "input images (N, C, H, W)")
    common.add_device_flags(p, with_mode=False)
    p.set_defaults(func=run)


def run(args):
    from ms_gan.export import SUFFIX, _require_onnx, export

    fmt = args.format.upper()
    if fmt == "ONNX":
        _require_onnx()
    if args.out is not None:
        if not args.out.lower().endswith(SUFFIX[fmt]) and os.path.splitext(args.out)[1]:
            raise UserError(f"--out {args.out!r} does not end in {SUFFIX[fmt]} (the {fmt} suffix)")
        out = args.out if args.out.lower().endswith(SUFFIX[fmt]) else args.out + SUFFIX[fmt]
    else:   # the default name comes from the checkpoint's preset: checked before any work all the same
        from ms_gan.checkpoint import read_meta

        out = f"{read_meta(args.ckpt)['preset']}_{args.net}{SUFFIX[fmt]}"
    common.check_output_file(out, "--out")
    common.check_output_file(out + ".json", "--out")
    common.setup_device(args)
    result = export(args.ckpt, fmt, args.out, args.net, use_ema=not args.no_ema)
    what = "generator" if result["net"] == "g" else "discriminator"
    line = f"exported the {what} of {result['preset']} to {result['path']} (metadata: {result['sidecar']})"
    if fmt == "ONNX":
        diff = result.get("max_abs_diff")
        line += ("; onnxruntime not installed, not verified" if diff is None
                 else f"; onnxruntime matches the checkpoint (max abs diff {diff:.2e})")
    print(line)
    return 0
