"""dcgan_digits8 vs dcgan_digits8_plus on the built-in digits: train, time, evaluate, print the tables.

Every score is ``ms-gan eval --ckpt CHECKPOINT --n 1797`` (FCD, precision, recall against all 1,797
digits with the shipped digit classifier), with G's raw weights (``--no-ema``) or its EMA.

An EMA of G does not change training (same seed: the same losses, bit for bit, with or without
``--ema``; docs/ablation_digits8.md shows the check), and a run of E epochs
is the first E epochs of a longer run (nothing in a preset depends on the total). So one run of
``dcgan_digits8 --ema DECAY --keep-checkpoints`` per seed scores both presets in the same
conditions: dcgan_digits8 is its raw G at epoch 200, a recipe "EMA, E epochs" is its EMA at
epoch E, with training time = the summed epoch seconds (stats.jsonl) up to E.

    python bench/digits8_plus.py --seeds 0 1 2                            # the table in the README
    python bench/digits8_plus.py --seeds 0 1 2 --score-epochs 50 --score-only   # what runs have so far
    python bench/digits8_plus.py --set ablation --epochs 50 --seeds 0     # one ingredient at a time

Runs and results are cached in ``--work``: rerunning prints the tables without retraining. At most
``--jobs`` runs at once, one thread each. docs/ablation_digits8.md has the numbers and the load.
"""
import argparse
import concurrent.futures
import json
import os
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EMA_DECAY = "0.999"
# One ingredient at a time on top of dcgan_digits8 (every run keeps an EMA, scored raw and EMA).
ABLATION = {
    "dcgan_digits8": [],
    "+lsgan": ["--loss", "lsgan"],
    "+diffaugment translation": ["--diffaugment", "translation"],
    "+lr 2e-4, beta1 0.5": ["--lr-g", "2e-4", "--lr-d", "2e-4", "--beta1-g", "0.5", "--beta1-d", "0.5"],
    "+batch 64": ["--batch-size", "64"],
    "+bce_logits, R1 0.1 every 4": ["--loss", "bce_logits", "--r1", "0.1", "--r1-every", "4"],
}


def _cli(*args):
    env = dict(os.environ, PYTHONPATH=ROOT)
    subprocess.run([sys.executable, "-m", "ms_gan", *args], check=True, env=env, stdout=subprocess.DEVNULL)


def epoch_records(run):
    with open(os.path.join(run, "stats.jsonl")) as f:
        return [r for r in map(json.loads, f) if r["kind"] == "epoch"]


def train(work, tag, flags, seed, epochs, keep):
    """One run of dcgan_digits8 with an EMA (resumed if present); returns its directory."""
    out = os.path.join(work, tag)
    args = ["train", "--preset", "dcgan_digits8", "--out", out, "--seed", str(seed), "--threads", "1",
            "--no-progress", "--log-every", "0", "--ema", EMA_DECAY, "--epochs", str(epochs), *flags]
    _cli(*args, *(["--keep-checkpoints"] if keep else []))
    return out


def score(ckpt, weights):
    """``ms-gan eval`` summary and real-vs-real baseline of one checkpoint ('raw' or 'ema' weights)."""
    report = f"{ckpt}.{weights}.eval.json"
    if not os.path.isfile(report):
        _cli("eval", "--ckpt", ckpt, "--n", "1797", "--threads", "1", "--out", report,
             *(["--no-ema"] if weights == "raw" else []))
    with open(report) as f:
        ev = json.load(f)
    return ev["summary"], ev["baseline"]


def mean_std(values, fmt):
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{fmt % statistics.mean(values)} ± {fmt % sd}"


def table(rows):
    """rows: (label, [result dicts with seconds, fcd, precision, recall])."""
    out = ["| recipe | seeds | train s | FCD | precision | recall | FCD per seed |", "|---|---|---|---|---|---|---|"]
    for label, rs in rows:
        out.append(f"| {label} | {len(rs)} | {mean_std([r['seconds'] for r in rs], '%.0f')} | "
                   f"{mean_std([r['fcd'] for r in rs], '%.1f')} | {mean_std([r['precision'] for r in rs], '%.3f')} | "
                   f"{mean_std([r['recall'] for r in rs], '%.3f')} | {', '.join('%.1f' % r['fcd'] for r in rs)} |")
    return "\n".join(out)


def result(run, epoch, weights):
    records = epoch_records(run)
    kept = os.path.join(run, "checkpoints", f"epoch_{epoch:04d}.ckpt")
    assert os.path.isfile(kept) or records[-1]["epoch"] == epoch, f"{run} has no checkpoint of epoch {epoch}"
    summary, baseline = score(kept if os.path.isfile(kept) else run, weights)
    seconds = sum(r["epoch_seconds"] for r in records if r["epoch"] <= epoch)
    return dict(summary, seconds=seconds, baseline=baseline)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--set", choices=("main", "ablation"), default="main")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--epochs", type=int, default=50, help="ablation: epochs per run")
    ap.add_argument("--train-epochs", type=int, default=200, help="main: epochs per run (the article's 200)")
    ap.add_argument("--score-epochs", type=int, nargs="+", default=[100, 150, 200],
                    help="main: the epochs whose checkpoints are scored")
    ap.add_argument("--score-only", action="store_true", help="score the runs in --work as they are, no training")
    ap.add_argument("--only", nargs="*", default=None, help="ablation: the ingredients to run (and their order)")
    ap.add_argument("--jobs", type=int, default=2, help="runs at once (each on one thread)")
    ap.add_argument("--work", default="/tmp/digits8_plus", help="run directories and cached scores")
    args = ap.parse_args(argv)
    os.makedirs(args.work, exist_ok=True)
    if args.set == "main":
        jobs = [(f"s{seed}", [], seed, args.train_epochs, True) for seed in args.seeds]
    else:
        names = args.only or list(ABLATION)
        jobs = [("abl_" + "".join(c if c.isalnum() else "_" for c in name) + f"_e{args.epochs}_s{seed}",
                 ABLATION[name], seed, args.epochs, False) for seed in args.seeds for name in names]
    if args.score_only:
        runs = [os.path.join(args.work, j[0]) for j in jobs]
    else:
        with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
            runs = list(pool.map(lambda j: train(args.work, *j), jobs))
    if args.set == "main":
        rows = []
        for e in args.score_epochs:
            rows.append((f"dcgan_digits8, {e} epochs (raw G)", [result(r, e, "raw") for r in runs]))
            rows.append((f"dcgan_digits8 + EMA {EMA_DECAY}, {e} epochs", [result(r, e, "ema") for r in runs]))
    else:
        rows = []
        for name in names:
            rs = [r for r, j in zip(runs, jobs) if j[1] == ABLATION[name]]
            rows.append((f"{name}, {args.epochs} epochs, raw G", [result(r, args.epochs, "raw") for r in rs]))
            rows.append((f"{name}, {args.epochs} epochs, EMA", [result(r, args.epochs, "ema") for r in rs]))
    base = rows[0][1][0]["baseline"]
    print(f"seeds {args.seeds}; load average (1 min) now {os.getloadavg()[0]:.1f}")
    print(table(rows))
    print(f"| real vs real (two halves of the digits) | | | {base['fcd']:.1f} | {base['precision']:.3f} | "
          f"{base['recall']:.3f} | |")


if __name__ == "__main__":
    main()
