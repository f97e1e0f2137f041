"""The one timing rule of the benchmarks: time the first call, warm up, report the median."""
import statistics
import time


def timed(fn, warmup=2, repeats=5):
    """(seconds of the first call, median seconds over ``repeats`` calls after ``warmup`` calls in all)."""
    t0 = time.perf_counter()
    fn()
    first = time.perf_counter() - t0
    for _ in range(max(warmup - 1, 0)):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return first, statistics.median(times)


def torch_layer_calls(module, x, dy):
    """(forward, forward+backward) callables of one PyTorch layer: the forward without autograd, and the
    backward of ``sum(module(x) * dy)`` into the input (``x.requires_grad``) and the parameters."""
    import torch

    def forward():
        with torch.no_grad():
            module(x)

    def forward_backward():
        module.zero_grad(set_to_none=True)
        x.grad = None
        (module(x) * dy).sum().backward()

    return forward, forward_backward
