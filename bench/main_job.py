"""The README's main job against the code it replaces, as whole processes, in one run.

    python bench/main_job.py [--epochs 200] [--repeats 1] [--out bench/results]

Times, interleaved (ms_gan, PyTorch, ms_gan, ...), from process start to exit:

* ``python -m ms_gan train --preset dcgan_digits8 --epochs E`` into a fresh run directory (what the README's
  main command runs, with its default outputs: samples, plots, checkpoints), with the CPU kernels as the
  environment selects them (``ms_gan``) and with ``MS_GAN_KERNELS=native`` (``ms_gan_native``: MindSpore's own
  convolutions, what the README's main command runs where oneDNN's headers are not installed);
* ``bench/seed000_torch.py --epochs E``: seed 000's PyTorch recipe (same data, batch 16, step order,
  sample grids and curves), once on the threads ms_gan's preset uses (``Preset.cpu_threads``) and once
  with PyTorch's default threads.

Prints and writes ``OUT/main_job.{json,md}`` with the medians and the ratios (PyTorch seconds / ms_gan
seconds: above 1.0x ms_gan is faster). The machine is noisy: compare ratios within one run.
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _timed(cmd, env=None):
    t0 = time.perf_counter()
    result = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if result.returncode != 0:
        raise SystemExit(f"failed ({result.returncode}): {' '.join(cmd)}\n{result.stderr[-2000:]}")
    return seconds


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=200, help="epochs (the article trains 200)")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--no-default-threads", action="store_true",
                    help="skip PyTorch on its default threads (4x slower than on one thread here: minutes at 200 epochs)")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results"))
    args = ap.parse_args()
    sys.path.insert(0, ROOT)
    from ms_gan import presets

    threads = presets.get("dcgan_digits8").cpu_threads or os.cpu_count()
    env = dict(os.environ, PYTHONPATH=ROOT)
    torch_runs = [(f"pytorch_{threads}_threads", threads)] + ([] if args.no_default_threads
                                                             else [("pytorch_default_threads", 0)])
    runs = {"ms_gan": [], "ms_gan_native": [], **{key: [] for key, _ in torch_runs}}
    with tempfile.TemporaryDirectory(prefix="ms_gan_main_job_") as tmp:
        for r in range(args.repeats):
            out = os.path.join(tmp, f"ms_{r}")
            runs["ms_gan"].append(_timed([sys.executable, "-m", "ms_gan", "train", "--preset", "dcgan_digits8",
                                          "--epochs", str(args.epochs), "--out", out, "--no-progress"], env))
            out = os.path.join(tmp, f"ms_native_{r}")
            runs["ms_gan_native"].append(_timed([sys.executable, "-m", "ms_gan", "train", "--preset", "dcgan_digits8",
                                                 "--epochs", str(args.epochs), "--out", out, "--no-progress"],
                                                dict(env, MS_GAN_KERNELS="native")))
            for key, t in torch_runs:
                out = os.path.join(tmp, f"{key}_{r}")
                runs[key].append(_timed([sys.executable, os.path.join("bench", "seed000_torch.py"), "--epochs",
                                         str(args.epochs), "--out", out, "--threads", str(t)], env))
            print({k: round(v[-1], 1) for k, v in runs.items()}, flush=True)
    med = {k: statistics.median(v) for k, v in runs.items()}
    result = {"epochs": args.epochs, "repeats": args.repeats, "cpu": platform.processor() or platform.machine(),
              "cores": os.cpu_count(), "load_average_at_end": os.getloadavg(), "seconds": runs, "median": med,
              "ratios": {f"{k}/{m}": med[k] / med[m] for m in ("ms_gan", "ms_gan_native")
                         for k in med if k.startswith("pytorch")},
              "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "main_job.json"), "w") as f:
        json.dump(result, f, indent=1)
    lines = [f"Main job, {args.epochs} epochs, whole process, median of {args.repeats} ({result['date']}, "
             f"load average at the end {result['load_average_at_end'][0]:.1f}):", "",
             "| run | seconds | PyTorch / ms_gan | PyTorch / ms_gan_native |", "|---|---|---|---|"]
    for k, v in med.items():
        ratios = ("", "") if not k.startswith("pytorch") else \
            tuple(f"{v / med[m]:.2f}x" for m in ("ms_gan", "ms_gan_native"))
        lines.append(f"| {k} | {v:.1f} | {ratios[0]} | {ratios[1]} |")
    with open(os.path.join(args.out, "main_job.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
