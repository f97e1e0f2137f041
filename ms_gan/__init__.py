"""ms_gan: GANs in MindSpore 2.x, trained, evaluated and exported.

Importing the package prepares the process environment MindSpore needs to run
fast on CPUs (see :mod:`ms_gan._env`); it does not import MindSpore itself, so
``ms-gan --help`` stays instant.
"""
from ms_gan import _env

_env.prepare()

__version__ = "0.1.0"
