"""dcgan_digits8 vs dcgan_digits8_plus on the built-in digits: train, time, evaluate, print the tables.

Every score is ``ms-gan eval --ckpt CHECKPOINT --n 1797`` (FCD, precision, recall against all 1,797
digits with the shipped digit classifier), with G's raw weights (``--no-ema``) or its EMA.

An EMA of G does not change training (same seed: the same losses, bit for bit, with or without
``--ema``; docs/ablation_digits8.md shows the check), and a run of E epochs
is the first E epochs of a longer run (nothing in a preset depends on the total). So one run of
``dcgan_digits8 --ema DECAY --keep-checkpoints`` per seed scores both presets in the same
conditions: dcgan_digits8 is its raw G at epoch 200, a recipe "EMA, E epochs" is its EMA at
epoch E, with training time = the summed epoch seconds (stats.jsonl) up to E. Should the
dcgan_digits8_plus preset become more than that EMA, ``--set main`` also trains it (runs ``pSEED``).

``--set ablation`` trains dcgan_digits8 with one ingredient of ABLATION at a time (an EMA kept, every
checkpoint kept) and scores each run's raw G and EMA at ``--epochs``; an ingredient that makes an epoch
5% slower or more (timed side by side with a run of dcgan_digits8's cost, see side_by_side) is also
scored at the epoch where it has used dcgan_digits8's time.

    python bench/digits8_plus.py --seeds 0 1 2                            # the table in the README
    python bench/digits8_plus.py --seeds 0 1 2 --score-epochs 50 --score-only   # what runs have so far
    python bench/digits8_plus.py --set ablation --seeds 0 --epochs 100 --jobs 1 --only '+hinge'   # one ingredient

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
    "+hinge": ["--loss", "hinge"],
    "+ns (non-saturating logistic)": ["--loss", "ns"],
    "+diffaugment translation": ["--diffaugment", "translation"],
    "+diffaugment color": ["--diffaugment", "color"],
    "+diffaugment cutout": ["--diffaugment", "cutout"],
    "+bce_logits, R1 0.1 every 4": ["--loss", "bce_logits", "--r1", "0.1", "--r1-every", "4"],
    "+wasserstein, GP 10": ["--loss", "wasserstein", "--gp", "10"],
    "+n-critic 2": ["--n-critic", "2"],
    "+lr 2e-4, beta1 0.5": ["--lr-g", "2e-4", "--lr-d", "2e-4", "--beta1-g", "0.5", "--beta1-d", "0.5"],
    "+beta1 0.5": ["--beta1-g", "0.5", "--beta1-d", "0.5"],
    "+batch 64": ["--batch-size", "64"],
}
# Ingredients that do not change the work per epoch (a loss or optimizer constant): their runs time the others.
SAME_COST = ("dcgan_digits8", "+lsgan", "+hinge", "+ns (non-saturating logistic)", "+lr 2e-4, beta1 0.5", "+beta1 0.5")


def _cli(*args):
    env = dict(os.environ, PYTHONPATH=ROOT)
    subprocess.run([sys.executable, "-m", "ms_gan", *args], check=True, env=env, stdout=subprocess.DEVNULL)


def epoch_records(run):
    with open(os.path.join(run, "stats.jsonl")) as f:
        return [r for r in map(json.loads, f) if r["kind"] == "epoch"]


def train(work, tag, flags, seed, epochs, keep, preset="dcgan_digits8"):
    """One run of ``preset`` with an EMA (resumed if present, skipped if done); returns its directory."""
    out = os.path.join(work, tag)
    stats = os.path.join(out, "stats.jsonl")
    if os.path.isfile(stats) and any(r["epoch"] >= epochs for r in epoch_records(out)):
        return out
    args = ["train", "--preset", preset, "--out", out, "--seed", str(seed), "--threads", "1",
            "--no-progress", "--log-every", "0", "--ema", EMA_DECAY, "--epochs", str(epochs), *flags]
    _cli(*args, *(["--keep-checkpoints"] if keep else []))
    return out


def plus_differs():
    """True when the dcgan_digits8_plus preset is more than dcgan_digits8 with an EMA of G."""
    sys.path.insert(0, ROOT)
    import dataclasses
    from ms_gan import presets
    base, plus = presets.get("dcgan_digits8"), presets.get("dcgan_digits8_plus")
    same = ("name", "summary", "source", "fixes", "notes", "ema")
    return any(getattr(base, f.name) != getattr(plus, f.name) for f in dataclasses.fields(plus) if f.name not in same)


def tag_of(name):
    return "".join(c if c.isalnum() else "_" for c in name)


def side_by_side(run, partners):
    """Seconds per epoch of ``run`` over those of runs that trained at the same time (wall clock).

    Each partner is a run of the same cost per epoch as dcgan_digits8 (SAME_COST): over the window in
    which both trained (epochs 1 and 2 left out: they compile graphs, R1's lazy step ~100 s into epoch 2),
    the median epoch time of ``run`` over the partner's; the
    ratio is the mean of these weighted by the window's length. Two runs side by side share
    the machine's load, which is what makes their times comparable on a loaded machine. Returns
    (ratio, seconds of overlap) or None when no partner overlapped 10 epochs or more.
    """
    def spans(r):
        return [(x["wall_time"] - x["epoch_seconds"], x["wall_time"]) for x in epoch_records(r)[2:]]

    mine, total, weighted = spans(run), 0.0, 0.0
    for other in partners:
        theirs = spans(other)
        if not (mine and theirs):
            continue
        lo, hi = max(mine[0][0], theirs[0][0]), min(mine[-1][1], theirs[-1][1])
        a = [e - b for b, e in mine if b >= lo and e <= hi]
        o = [e - b for b, e in theirs if b >= lo and e <= hi]
        if len(a) >= 10 and len(o) >= 10:
            total += hi - lo
            weighted += (hi - lo) * statistics.median(a) / statistics.median(o)
    return (weighted / total, total) if total else None


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
    ap.add_argument("--epochs", type=int, default=200, help="ablation: epochs per run")
    ap.add_argument("--train-epochs", type=int, default=200, help="main: epochs per run (the article's 200)")
    ap.add_argument("--score-epochs", type=int, nargs="+", default=[100, 150, 200],
                    help="main: the epochs whose checkpoints are scored")
    ap.add_argument("--score-only", action="store_true", help="score the runs in --work as they are, no training")
    ap.add_argument("--only", nargs="*", default=None, help="ablation: the ingredients to run (and their order)")
    ap.add_argument("--jobs", type=int, default=2, help="runs at once (each on one thread)")
    ap.add_argument("--work", default="/tmp/digits8_plus", help="run directories and cached scores")
    args = ap.parse_args(argv)
    os.makedirs(args.work, exist_ok=True)
    names = args.only or list(ABLATION)
    if args.set == "main":
        jobs = [(f"s{seed}", [], seed, args.train_epochs, True) for seed in args.seeds]
        if plus_differs():   # dcgan_digits8_plus is more than dcgan_digits8's EMA: its own runs
            jobs += [(f"p{seed}", [], seed, args.train_epochs, True, "dcgan_digits8_plus") for seed in args.seeds]
    else:
        # every checkpoint is kept: an ingredient that costs time is also scored at equal time
        jobs = [(f"abl_{tag_of(name)}_s{seed}", ABLATION[name], seed, args.epochs, True)
                for seed in args.seeds for name in names]
    if args.score_only:
        runs = [os.path.join(args.work, j[0]) for j in jobs]
    else:
        with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
            runs = list(pool.map(lambda j: train(args.work, *j), jobs))
    if args.set == "main":
        rows = []
        base_runs = [r for r, j in zip(runs, jobs) if len(j) == 5]
        plus_runs = [r for r, j in zip(runs, jobs) if len(j) == 6]
        for e in args.score_epochs:
            rows.append((f"dcgan_digits8, {e} epochs (raw G)", [result(r, e, "raw") for r in base_runs]))
            rows.append((f"dcgan_digits8 + EMA {EMA_DECAY}, {e} epochs", [result(r, e, "ema") for r in base_runs]))
            if plus_runs:
                rows.append((f"dcgan_digits8_plus, {e} epochs", [result(r, e, "ema") for r in plus_runs]))
    else:
        rows, costs = [], []
        for name in names:
            rs = [r for r, j in zip(runs, jobs) if j[1] == ABLATION[name]]
            epochs = [args.epochs]
            if name not in SAME_COST:
                partners = [os.path.join(args.work, f"abl_{tag_of(n)}_s{seed}") for n in SAME_COST
                            for seed in args.seeds]
                ratio = side_by_side(rs[0], [p for p in partners if os.path.isfile(os.path.join(p, "stats.jsonl"))])
                costs.append(f"{name}: " + ("no run of the same time window" if ratio is None else
                                            f"{ratio[0]:.2f}x dcgan_digits8's seconds per epoch "
                                            f"(side by side for {ratio[1]:.0f} s)"))
                # 5% or more: also scored at the epoch with dcgan_digits8's time
                if ratio and ratio[0] >= 1.05:
                    epochs.append(int(args.epochs / ratio[0]))
            for e in epochs:
                at = f"{e} epochs" + ("" if e == args.epochs else f" (= dcgan_digits8's {args.epochs} in time)")
                rows.append((f"{name}, {at}, raw G", [result(r, e, "raw") for r in rs]))
                rows.append((f"{name}, {at}, EMA", [result(r, e, "ema") for r in rs]))
        print("\n".join(costs))
    base = rows[0][1][0]["baseline"]
    print(f"seeds {args.seeds}; load average (1 min) now {os.getloadavg()[0]:.1f}")
    print(table(rows))
    print(f"| real vs real (two halves of the digits) | | | {base['fcd']:.1f} | {base['precision']:.3f} | "
          f"{base['recall']:.3f} | |")


if __name__ == "__main__":
    main()
