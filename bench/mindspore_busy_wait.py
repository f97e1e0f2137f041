"""MindSpore 2.10 CPU: the Python thread busy-waits while a compiled graph with gradients runs.

    python bench/mindspore_busy_wait.py

Plain MindSpore (imports nothing of ms_gan); the report for upstream is in bench/NOTES.md ("MindSpore report:
the busy-waiting caller"). Prints, per graph, the wall time of a call and the CPU time the calling thread used
during it (``time.thread_time``), for a forward-only graph and the same network's value_and_grad graph. A
waiting thread should use ~0 CPU; the gradient graph's caller uses about half a core on 2 cores.
"""
import time

import numpy as np
import mindspore as ms
from mindspore import nn, ops

ms.set_context(mode=ms.GRAPH_MODE, device_target="CPU")


class Net(nn.Cell):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(64, 128, 4, stride=2, pad_mode="pad", padding=1)
        self.c2 = nn.Conv2d(128, 256, 4, stride=2, pad_mode="pad", padding=1)

    def construct(self, x):
        return self.c2(ops.relu(self.c1(x)))


net = Net()
x = ms.Tensor(np.random.default_rng(0).standard_normal((64, 64, 32, 32), dtype=np.float32))


def loss(x):
    return net(x).sum()


forward = ms.jit(loss)
grad = ms.jit(ms.value_and_grad(loss, None, net.trainable_params()))


def measure(fn, name, repeats=10):
    for _ in range(2):
        out = fn(x)
    walls, cpus = [], []
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.thread_time()
        out = fn(x)
        first = out[0] if isinstance(out, tuple) else out
        first.asnumpy()
        walls.append(time.perf_counter() - w0)
        cpus.append(time.thread_time() - c0)
    w, c = float(np.median(walls)), float(np.median(cpus))
    print(f"{name:>22}: wall {1e3 * w:7.1f} ms, calling thread CPU {1e3 * c:7.1f} ms ({c / w:.2f} of a core)")


print("MindSpore", ms.__version__)
measure(forward, "forward only")
measure(grad, "value_and_grad")
