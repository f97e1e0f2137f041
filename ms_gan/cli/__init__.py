"""``ms-gan``: the command line. Parses flags, turns user mistakes into one-line errors.

Every sub-command lives in its own module of this package, listed in :data:`COMMANDS`;
no model logic lives here. User mistakes (:class:`ms_gan.errors.UserError`, bad flags)
print ``ms-gan: error: ...`` on one line and exit with code 2, without a traceback;
Ctrl-C and SIGTERM print ``ms-gan: interrupted ...`` and exit with 130. No module
outside this package imports it (tests/test_layering.py).
"""
import sys

from ms_gan.cli import common, convert, eval as eval_cmd, export, presets, sample, train
from ms_gan.errors import UserError

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130
# The whole command set, in the order `ms-gan --help` lists it.
COMMANDS = (train, sample, export, eval_cmd, convert, presets)


def build_parser():
    from ms_gan import __version__

    parser = common.Parser(prog="ms-gan", description="Train, sample, evaluate and export GANs with MindSpore.")
    parser.add_argument("--version", action="version", version=f"ms_gan {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=common.Parser)
    for module in COMMANDS:
        module.register(sub)
    return parser


def main(argv=None):
    """Run one command; ``argv`` None means the process's own arguments (the ``ms-gan`` program)."""
    from ms_gan import interrupt

    previous = interrupt.install()   # first: a Ctrl-C during start-up must not hit MindSpore's import
    try:
        return _run(argv)
    finally:
        if argv is not None:   # called in-process (tests, scripts): give the caller its handlers back;
            interrupt.restore(previous)   # the program keeps ours through interpreter shutdown


def _run(argv):
    from ms_gan import interrupt

    parser = build_parser()
    args = None
    try:
        args = parser.parse_args(argv)
        if not getattr(args, "command", None):
            parser.print_help()
            return EXIT_USER_ERROR
        status = args.func(args) or 0
        interrupt.check()   # a signal during the last, uninterruptible stretch
        return status
    except UserError as exc:
        sys.stdout.flush()
        sys.stderr.write(f"ms-gan: error: {exc}\n")
        return EXIT_USER_ERROR
    except BrokenPipeError:   # `ms-gan presets | head`: the reader left; say nothing more
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt as exc:
        where = getattr(exc, "where", "")
        sys.stdout.flush()
        if getattr(args, "command", None) == "train":
            sys.stderr.write(f"ms-gan: interrupted{' ' + where if where else ''}; "
                             f"rerun the same command to resume\n")
        else:
            sys.stderr.write("ms-gan: interrupted; nothing was written\n")
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
