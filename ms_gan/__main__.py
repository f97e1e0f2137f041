"""``python -m ms_gan`` is the same as the ``ms-gan`` command."""
import sys

from ms_gan import interrupt

interrupt.install()   # before the CLI's imports: a Ctrl-C from here on is handled (ms_gan.interrupt)

from ms_gan.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
