"""ms_gan: GANs in MindSpore 2.x, trained, evaluated and exported.

Importing the package prepares the process environment MindSpore needs to run
fast on CPUs (see :mod:`ms_gan._env`); it does not import MindSpore itself, so
``ms-gan --help`` stays instant.
It refuses NumPy 2 in one line (see :func:`ms_gan._env.numpy_problem`): as the
``ms-gan`` command with ``ms-gan: error: ...`` and exit code 2, as a library with an
ImportError carrying the same sentence.
"""
from ms_gan import _env

_env.prepare()
_numpy_problem = _env.numpy_problem()
if _numpy_problem:
    if _env.running_cli():
        import sys

        sys.stderr.write(f"ms-gan: error: {_numpy_problem}\n")
        sys.exit(2)
    raise ImportError(_numpy_problem)

__version__ = "0.1.0"
