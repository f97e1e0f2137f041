"""``python -m ms_gan`` is the same as the ``ms-gan`` command."""
import sys

from ms_gan.cli import main

if __name__ == "__main__":
    sys.exit(main())
