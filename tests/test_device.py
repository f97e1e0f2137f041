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


def test_choose_core_takes_the_least_pinned_core():
    assert device.choose_core([0, 1], {0: 3, 1: 0}, pid=10) == 1
    assert device.choose_core([0, 1, 2], {0: 1, 1: 2, 2: 1}, pid=10) in (0, 2)
    # ties are spread by the process id, so runs started together do not all take one core
    assert {device.choose_core([0, 1], {0: 0, 1: 0}, pid=p) for p in (10, 11)} == {0, 1}


@pytest.mark.skipif(len(__import__("os").sched_getaffinity(0)) < 2, reason="needs two cores")
def test_one_thread_run_avoids_the_core_another_run_is_pinned_to():
    """Two one-thread trainings side by side used to share the first core and leave the others idle."""
    import os

    cores = sorted(os.sched_getaffinity(0))
    # three processes on the first core: more than the other tests of a parallel run pin anywhere at once
    busy = [subprocess.Popen([sys.executable, "-c", "import os, sys, time\n"
                              f"os.sched_setaffinity(0, {{{cores[0]}}})\n"
                              "print('ready', flush=True)\ntime.sleep(120)\n"], stdout=subprocess.PIPE, text=True)
            for _ in range(3)]
    try:
        assert [b.stdout.readline().strip() for b in busy] == ["ready"] * 3
        code = ("import os, ms_gan\nfrom ms_gan import device\n"
                "device.setup('CPU', threads=1)\nprint(sorted(os.sched_getaffinity(0)))\n")
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr[-2000:]
        chosen = eval(r.stdout.strip().splitlines()[-1])
        assert len(chosen) == 1 and chosen[0] != cores[0]
    finally:
        for b in busy:
            b.kill()
            b.wait()
