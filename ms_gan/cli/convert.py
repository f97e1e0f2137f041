"""``ms-gan convert``: PyTorch weights to an ms_gan checkpoint, or back (needs torch)."""
from ms_gan.cli import common
from ms_gan.convert import NAMINGS, _torch, checkpoint_to_torch, torch_file_to_checkpoint
from ms_gan.errors import UserError


def register(sub):
    p = sub.add_parser(
        "convert", help="convert PyTorch weights to an ms_gan checkpoint, or back (needs torch)",
        description="PyTorch -> MindSpore: --from-torch FILE.pt (G, D or both) or --g FILE --d FILE, with "
                    "--preset and --out FILE.ckpt. MindSpore -> PyTorch: --to-torch CKPT with --out FILE.pt "
                    "({'G': sd, 'D': sd}) and/or --g/--d FILE.pt (one state_dict each).")
    p.add_argument("--from-torch", metavar="FILE.pt", default=None, help="PyTorch file with G, D or both")
    p.add_argument("--to-torch", metavar="CKPT", default=None, help="ms_gan checkpoint or run directory")
    p.add_argument("--g", metavar="FILE.pt", default=None,
                   help="G's state_dict file: input (with --preset) or, with --to-torch, output")
    p.add_argument("--d", metavar="FILE.pt", default=None, help="D's state_dict (input or output, like --g)")
    p.add_argument("--preset", default=None, help="preset the PyTorch weights belong to (PyTorch -> MindSpore)")
    p.add_argument("--out", default=None, help="output .ckpt (from torch) or .pt (to torch)")
    p.add_argument("--inception-weights", metavar="FILE.pth", default=None,
                   help="pytorch-fid's pt_inception-2015-12-05-6726825d.pth: write it as a MindSpore .ckpt "
                        "(with --out) for 'ms-gan eval --extractor inception'")
    p.add_argument("--naming", choices=NAMINGS, default="reference",
                   help="key names written with --to-torch: ms_gan's module paths (default) or the seed "
                        "article's PyTorch code (dcgan_digits8, dcgan64, sagan64)")
    p.set_defaults(func=run)


def run(args):
    if args.inception_weights is not None:
        if any(v is not None for v in (args.from_torch, args.to_torch, args.g, args.d, args.preset)):
            raise UserError("--inception-weights converts the Inception weights alone; give only --out with it")
        if args.out is None:
            raise UserError("--inception-weights needs --out FILE.ckpt")
        common.check_output_file(args.out, "--out", (".ckpt",))
        from ms_gan.eval.inception import convert_torch_file

        out, digest = convert_torch_file(args.inception_weights, args.out)
        print(f"wrote {out}: FID Inception-v3 (2015-12-05), sha256 {digest}")
        return 0
    if args.to_torch is not None:
        if args.from_torch is not None:
            raise UserError("give either --from-torch or --to-torch, not both")
        if args.out is None and args.g is None and args.d is None:
            raise UserError("--to-torch needs --out FILE.pt (or --g/--d FILE.pt)")
        for target in (args.out, args.g, args.d):
            if target is not None:
                common.check_output_file(target, "--out/--g/--d")
        _torch()
        result = checkpoint_to_torch(args.to_torch, args.out, args.g, args.d, args.naming)
        # Each file with what it holds: --out gets every network found, --g/--d one each.
        written = [(target, [r for r in roles if r in result])
                   for target, roles in ((args.out, ("G", "D")), (args.g, ("G",)), (args.d, ("D",))) if target]
        print("wrote " + "; ".join(", ".join(f"{r} {len(result[r])} tensors" for r in roles) + f" to {target}"
                                   for target, roles in written) + f" ({args.naming} naming)")
        return 0
    if args.from_torch is None and args.g is None and args.d is None:
        raise UserError("nothing to convert: give --from-torch FILE.pt, --g/--d FILE.pt, or --to-torch CKPT")
    if args.preset is None:
        raise UserError("--preset is required to convert PyTorch weights (ms-gan presets lists them)")
    if args.out is None:
        raise UserError("--out FILE.ckpt is required")
    if args.naming != "reference":
        raise UserError("--naming applies to --to-torch only (the input naming is detected)")
    common.check_output_file(args.out, "--out", (".ckpt",))
    _torch()
    out, info = torch_file_to_checkpoint(args.out, args.preset, args.from_torch, args.g, args.d)
    namings = ", ".join(f"{role} ({info['naming'][role]} naming)" for role in info["roles"])
    print(f"wrote {out}: preset {args.preset}, {namings}")
    return 0

