"""PyTorch reference models of every preset, and the glue that runs them beside ms_gan.

Used by the parity tests (``tests/parity``) and the benchmarks (``bench/``), never by the
library or the CLI: its modules import torch at the top, so import them only where torch
is installed (``from ms_gan.reference import torch_models``). This package itself imports
nothing.
"""
