"""What several commands share: number types, device flags and setup, --no-ema, the
--ckpt|--mindir choice, and output checks made before any work starts."""
import argparse
import math
import os

from ms_gan.errors import UserError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors (a UserError instead of usage text and exit 2)."""

    def error(self, message):
        raise UserError(f"{message} (see '{self.prog} --help')")


def number(kind, minimum=None, strict=False):
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


positive_int = number(int, 1)
non_negative_int = number(int, 0)
positive_float = number(float, 0, strict=True)
any_float = number(float)


def add_no_ema_flag(p):
    p.add_argument("--no-ema", action="store_true", help="use G's raw weights even if the checkpoint has an EMA")


def add_generator_source(p):
    """--ckpt or --mindir (exactly one; checked by ms_gan.generate.check_one_source), and --no-ema."""
    p.add_argument("--ckpt", default=None, help="checkpoint file or run directory (its latest checkpoint)")
    p.add_argument("--mindir", default=None, help="an exported generator (.mindir with its .json)")
    add_no_ema_flag(p)


def add_device_flags(p, with_mode=True):
    g = p.add_argument_group("device")
    g.add_argument("--device", default="CPU", help="CPU, GPU or Ascend (default CPU)")
    g.add_argument("--device-id", type=non_negative_int, default=None, help="device index (GPU/Ascend)")
    if with_mode:
        g.add_argument("--mode", choices=("graph", "pynative"), default="graph",
                       help="graph: steps compiled with mindspore.jit (default); pynative: eager")
    g.add_argument("--threads", type=positive_int, default=None,
                   help="CPU kernel threads (default: the preset's choice, else the cores this process may "
                        "use); 1 also keeps the process on one core")


def check_device_flags(args):
    """Refuse device flags that cannot do what they ask, before MindSpore starts.

    Errors rather than warnings: both were accepted silently before (issue 12), and a
    flag that is ignored is a mistake the user wants to hear about once, not a run later.
    """
    from ms_gan import device

    target = device.normalize_target(args.device)
    if target == "CPU" and args.device_id is not None:
        raise UserError(f"--device-id {args.device_id} applies to GPU/Ascend; the CPU target has no device index "
                        f"(drop the flag)")
    cores = device.default_cpu_threads()
    if target == "CPU" and args.threads is not None and args.threads > cores:
        raise UserError(f"--threads {args.threads} is more than the {cores} core(s) this process may use "
                        f"(more kernel threads than cores only adds switching); use at most {cores}")


def setup_device(args, seed=None, preset=None):
    from ms_gan import device

    check_device_flags(args)
    mode = getattr(args, "mode", "graph")
    # A preset's thread choice is measured for graph mode; PyNative's own queue threads need the cores.
    threads = args.threads or (preset.cpu_threads if preset is not None and mode == "graph" else 0) or None
    return device.setup(args.device, args.device_id, mode, threads, seed=seed)


def check_output_file(path, flag, suffixes=None):
    """An output file: right suffix, not a directory, its folder writable. Checked before any work."""
    from ms_gan.checkpoint import check_writable

    if suffixes and not str(path).lower().endswith(tuple(suffixes)):
        raise UserError(f"{flag} {path!r} must end in {' or '.join(suffixes)}")
    check_writable(path, "file")
    return path


def check_output_dir(path):
    """An output directory: not a file, inside a writable folder. Checked before any work."""
    from ms_gan.checkpoint import check_writable

    check_writable(path, "dir")
    return path


def grid_shape(n, rows):
    rows = rows or max(1, int(math.floor(math.sqrt(n))))
    return rows, int(math.ceil(n / rows))


def abspath_or_builtin(data):
    return os.path.abspath(data) if data != "builtin" else data
