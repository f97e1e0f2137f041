"""Training throughput of every preset: MindSpore graph mode, PyNative, and PyTorch eager.

    python bench/train_throughput.py [--preset all|NAME,...] [--batch 64] [--threads N]
                                     [--repeats 5] [--frameworks graph,graph_native,pynative,torch]
                                     [--out bench/results]

Each (preset, framework) runs in its own subprocess (so peak RSS is that run's alone), with
the same thread count for MindSpore graph mode and PyTorch: the preset's own
(``Preset.cpu_threads``, what ``ms-gan train`` uses; PyNative gets every core, as there) unless
``--threads`` is given; where that is fewer than the cores,
PyTorch is also timed on all cores, so no ratio is flattered. A measurement is one full training
iteration of the preset's step order (its D update(s) and G update, G forward twice as the
recipes do) on random data at ``--batch`` real images, after warm-up; the reported time is
the median over ``--repeats`` timed iterations. The first call's time is reported as the
compile time of graph mode (the jit of the fused iteration). PyTorch runs the reference
models of ``ms_gan.reference`` (the parity tests prove they compute the same function).

``graph`` runs with ``ms_gan.kernels`` as the environment selects them (the default: on, on CPU);
``graph_native`` is the same with ``MS_GAN_KERNELS=native`` (MindSpore's own convolutions).

Also measured: images/s each data source delivers (``--data-sources``), to compare with
what the training step consumes.

Writes ``OUT/train_throughput.json`` and ``OUT/train_throughput.md`` (the README's table).
"""
import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench.timing import timed  # noqa: E402


def _peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def mindspore_iteration(preset_name, batch, threads, mode):
    """(one training iteration as the trainer runs it, images per iteration) for MindSpore."""
    import numpy as np

    import ms_gan  # noqa: F401  (environment before MindSpore)
    import mindspore as ms

    from ms_gan import device, presets
    from ms_gan.models import build
    from ms_gan.train.optim import Adam
    from ms_gan.train.steps import build_steps
    from ms_gan.train.trainer import iteration_inputs

    device.setup("CPU", mode=mode, threads=threads)
    p = presets.get(preset_name)
    G, D = build(p, 0)
    G.set_train(True)
    D.set_train(True)
    opt_g = Adam(G.trainable_params(), p.lr_g, p.beta1_g, p.beta2_g, p.adam_eps, p.adam_eps_mode, prefix="opt_g")
    opt_d = Adam(D.trainable_params(), p.lr_d, p.beta1_d, p.beta2_d, p.adam_eps, p.adam_eps_mode, prefix="opt_d")
    steps = build_steps(p, G, D, opt_g, opt_d, use_jit=mode == "graph")
    rng = np.random.default_rng(0)
    real_n = batch // p.real_batch_div
    real = ms.Tensor(rng.uniform(-1, 1, (real_n, p.channels, p.image_size, p.image_size)).astype(np.float32))

    def iteration():
        # Exactly the trainer's per-iteration work: host noise, one fused call, one host copy.
        fakes, z_g = iteration_inputs(rng, real_n, p, steps)
        steps.iteration(real, fakes, z_g).asnumpy()

    return iteration, real_n


def run_mindspore(preset_name, batch, threads, repeats, warmup, mode):
    iteration, real_n = mindspore_iteration(preset_name, batch, threads, mode)
    first, median = timed(iteration, warmup, repeats)
    from ms_gan import kernels

    return {"first_call_s": first, "median_s": median, "images_per_s": real_n / median,
            "kernels": kernels.library() is not None}


def torch_iteration(preset_name, batch, threads):
    """(one training iteration of the PyTorch reference recipe, images per iteration)."""
    import numpy as np
    import torch

    from ms_gan import presets
    from ms_gan.reference import torch_models as tm

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    p = presets.get(preset_name)
    G, D = tm.build(p)
    recipe = tm.Recipe(p, G, D)
    rng = np.random.default_rng(0)
    real_n = batch // p.real_batch_div
    real = torch.as_tensor(rng.uniform(-1, 1, (real_n, p.channels, p.image_size, p.image_size)).astype(np.float32))

    def iteration():
        recipe.iteration(real, tm.noise_plan(p, real_n, rng))

    return iteration, real_n


def run_torch(preset_name, batch, threads, repeats, warmup):
    iteration, real_n = torch_iteration(preset_name, batch, threads)
    first, median = timed(iteration, warmup, repeats)
    return {"first_call_s": first, "median_s": median, "images_per_s": real_n / median}


def run_data_sources(batch, threads):
    """Images/s each source delivers through its mindspore.dataset pipeline (dcgan64's 64x64)."""
    import numpy as np

    import ms_gan  # noqa: F401
    from ms_gan import device
    from ms_gan.data import ImagePipeline, ImageSpec
    from tests.helpers import write_image_folder, write_mnist

    device.setup("CPU", threads=threads)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        mnist = os.path.join(tmp, "mnist")
        write_mnist(mnist, n_train=2048, n_test=16)
        folder = os.path.join(tmp, "folder")
        write_image_folder(folder, n=512, size=64)
        array = os.path.join(tmp, "a.npy")
        np.save(array, np.random.default_rng(0).integers(0, 256, (2048, 64, 64), dtype=np.uint8))
        for name, data, spec in (("builtin (8x8)", "builtin", ImageSpec(8, 1)),
                                 ("builtin -> 64x64", "builtin", ImageSpec(64, 1)),
                                 ("MNIST IDX (28x28)", mnist, ImageSpec(28, 1)),
                                 ("image folder (64x64)", folder, ImageSpec(64, 1)),
                                 ("array .npy (64x64)", array, ImageSpec(64, 1))):
            t0 = time.perf_counter()
            pipe = ImagePipeline(data, spec, batch)
            setup = time.perf_counter() - t0
            t0 = time.perf_counter()
            n = 0
            for (images,) in pipe.dataset(0).create_tuple_iterator(num_epochs=1):
                n += images.shape[0]
            seconds = time.perf_counter() - t0
            results[name] = {"images": n, "setup_s": setup, "images_per_s": n / seconds}
    return results


def _worker(args):
    if args.framework == "torch":
        result = run_torch(args.preset, args.batch, args.threads, args.repeats, args.warmup)
    elif args.framework == "data":
        result = run_data_sources(args.batch, args.threads)
    else:
        mode = "graph" if args.framework == "graph_native" else args.framework
        result = run_mindspore(args.preset, args.batch, args.threads, args.repeats, args.warmup, mode)
    result["peak_rss_mb"] = _peak_rss_mb()
    print("RESULT " + json.dumps(result))


def _spawn(args, preset, framework, repeats, threads):
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", "--preset", preset, "--framework", framework,
           "--batch", str(args.batch), "--threads", str(threads), "--repeats", str(repeats),
           "--warmup", str(args.warmup)]
    env = dict(os.environ, MS_GAN_KERNELS="native") if framework == "graph_native" else None
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=args.timeout, env=env)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    return {"error": (proc.stderr.strip().splitlines() or ["no output"])[-1][:300]}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="all", help="'all' or comma-separated preset names")
    parser.add_argument("--batch", type=int, default=64, help="real images per iteration (default 64)")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for both frameworks (default: each preset's own, as `ms-gan train` uses)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--pynative-repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--frameworks", default="graph,graph_native,pynative,torch")
    parser.add_argument("--data-sources", action="store_true", help="also measure the data pipelines")
    parser.add_argument("--out", default=os.path.join(ROOT, "bench", "results"))
    parser.add_argument("--timeout", type=int, default=3600)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--framework", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return _worker(args)

    from ms_gan import presets

    names = presets.names() if args.preset == "all" else args.preset.split(",")
    frameworks = args.frameworks.split(",")
    cores = len(os.sched_getaffinity(0))
    rows = {}
    for name in names:
        rows[name] = {}
        threads = args.threads or presets.get(name).cpu_threads or cores
        for fw in frameworks:
            repeats = args.pynative_repeats if fw == "pynative" else args.repeats
            if fw == "graph_native" and presets.get(name).family == "mlp":
                continue   # no convolutions: the kernels change nothing
            # As `ms-gan train`: a preset's thread choice is for graph mode, PyNative gets every core.
            fw_threads = args.threads or (cores if fw == "pynative" else threads)
            rows[name][fw] = _spawn(args, name, fw, repeats, fw_threads)
            print(name, fw, json.dumps(rows[name][fw]), flush=True)
        if "torch" in frameworks and threads < cores:
            # PyTorch at its own best on this machine too, so the ratio is never flattered.
            rows[name]["torch_all_cores"] = _spawn(args, name, "torch", args.repeats, cores)
            print(name, "torch_all_cores", json.dumps(rows[name]["torch_all_cores"]), flush=True)
        rows[name]["threads"] = threads
    data = _spawn(args, "-", "data", 1, args.threads or cores) if args.data_sources else None
    machine = {"cpu": _cpu_name(), "cores": cores, "python": platform.python_version(),
               "platform": platform.platform(), "onednn_isa": os.environ.get("ONEDNN_MAX_CPU_ISA", "AVX2 (ms_gan default)")}
    report = {"batch": args.batch, "machine": machine, "results": rows, "data_sources": data,
              "command": "python bench/train_throughput.py " + " ".join(a for a in (argv or sys.argv[1:]))}
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "train_throughput.json"), "w") as f:
        json.dump(report, f, indent=2)
    table = markdown(report)
    with open(os.path.join(args.out, "train_throughput.md"), "w") as f:
        f.write(table)
    print(table)
    return 0


def _cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def markdown(report):
    lines = [f"Batch {report['batch']} real images per iteration, {report['machine']['cpu']}, "
             f"{report['machine']['cores']} cores; graph mode and PyTorch on each preset's threads (`ms-gan train`'s "
             "default; PyNative on all cores), PyTorch also on all cores where that differs.", "",
             "| preset | threads | MindSpore graph img/s | graph, kernels off img/s | PyNative img/s "
             "| PyTorch eager img/s | graph / PyTorch | kernels off / PyTorch "
             "| PyTorch all cores img/s | graph / PyTorch all cores | graph compile s | peak RSS MB graph "
             "| peak RSS MB PyNative |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]

    def fmt(value, spec):
        return format(value, spec) if value else "-"

    for name, row in report["results"].items():
        def get(fw, key="images_per_s"):
            r = row.get(fw, {})
            return r.get(key) if isinstance(r, dict) else None
        g, gn, pn, t = get("graph"), get("graph_native"), get("pynative"), get("torch")
        t_all = get("torch_all_cores") or t
        ratio = f"{g / t:.2f}x" if g and t else "-"
        ratio_all = f"{g / t_all:.2f}x" if g and t_all else "-"
        ratio_native = f"{gn / t:.2f}x" if gn and t else "-"
        lines.append(f"| {name} | {row.get('threads', '-')} | {fmt(g, '.1f')} | {fmt(gn, '.1f')} | {fmt(pn, '.1f')} "
                     f"| {fmt(t, '.1f')} | {ratio} | {ratio_native} | {fmt(t_all, '.1f')} | {ratio_all} | {fmt(get('graph', 'first_call_s'), '.1f')} "
                     f"| {fmt(get('graph', 'peak_rss_mb'), '.0f')} | {fmt(get('pynative', 'peak_rss_mb'), '.0f')} |")
    if report.get("data_sources"):
        lines += ["", "| data source | images/s | setup s |", "|---|---|---|"]
        for name, r in report["data_sources"].items():
            if isinstance(r, dict) and "images_per_s" in r:
                lines.append(f"| {name} | {r['images_per_s']:.0f} | {r['setup_s']:.2f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
