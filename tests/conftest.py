"""Test-wide setup: prepare MindSpore's environment before anything imports it."""
import os
import sys

import ms_gan  # noqa: F401  (sets ONEDNN_MAX_CPU_ISA / GLOG_v before MindSpore loads)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
