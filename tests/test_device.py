"""ms_gan.device.setup: one place for target, mode and threads."""
import subprocess
import sys

import pytest

from ms_gan import device
from ms_gan.errors import UserError


def test_bad_arguments_are_user_errors():
    with pytest.raises(UserError, match="mode"):
        device.setup("CPU", mode="eager")
    with pytest.raises(UserError, match="threads"):
        device.setup("CPU", threads=0)


def test_setup_after_kernels_already_ran_in_the_process():
    """Library use: MindSpore ran kernels before ms_gan's setup; same target is fine."""
    code = ("import ms_gan, numpy as np, mindspore as ms\n"
            "print(float((ms.Tensor(np.ones(3, np.float32)) * 2).sum().asnumpy()))\n"
            "from ms_gan import device\n"
            "print(device.setup('CPU', threads=1)['target'])\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.split() == ["6.0", "CPU"]


def test_one_thread_keeps_every_thread_on_one_core():
    code = ("import os, ms_gan, numpy as np, mindspore as ms\n"
            "from ms_gan import device\n"
            "device.setup('CPU', threads=1)\n"
            "print(float((ms.Tensor(np.ones(3, np.float32)) * 2).sum().asnumpy()))\n"
            "cores = {frozenset(os.sched_getaffinity(int(t))) for t in os.listdir('/proc/self/task')}\n"
            "print(len(cores), len(next(iter(cores))))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.split()[-2:] == ["1", "1"]   # one affinity set for all threads, of one core
