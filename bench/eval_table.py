"""Reproduce the README's evaluation table: every preset, trained briefly on the built-in digits.

For each preset: a classifier of its shape is trained on the built-in digits at that shape
(``ms-gan train-classifier --data builtin --preset P``; the shipped one for dcgan_digits8),
the preset is trained for a few steps (``ms-gan train --data builtin --max-steps N``;
dcgan128_rgb reads the digits replicated to RGB), an untrained checkpoint of the same
preset is written (seed 0), and both are scored with
``ms-gan eval --data builtin --classifier C --n N``; the real-vs-real baseline comes
with every report. Writes ``OUT/table.json`` and prints the Markdown table.

    python bench/eval_table.py --out /tmp/eval_table   # ~30 min on 2 shared cores
"""
import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# (preset, extra train flags): steps chosen so the whole table takes ~30 min on 2 shared cores
# (dcgan128_rgb ran ~8 s per step at batch 16 here, sagan64 ~4 s at batch 64).
RUNS = (
    ("mlp_mnist", ["--max-steps", "300"]),
    ("dcgan_digits8", ["--max-steps", "300"]),
    ("dcgan_mnist28", ["--max-steps", "200"]),
    ("dcgan64", ["--max-steps", "60"]),
    ("sagan64", ["--max-steps", "30"]),
    ("dcgan128_rgb", ["--max-steps", "30", "--batch-size", "16"]),
)
# Classifier epochs per (size, channels); 8x8 gray uses the shipped classifier.
CLASSIFIER_EPOCHS = {(28, 1): 8, (64, 1): 5, (128, 3): 4}
UNTRAINED = """
import sys
import ms_gan
from ms_gan import checkpoint, device, presets
from ms_gan.models import build
device.setup("CPU")
G, D = build(presets.get(sys.argv[1]), seed=0)
checkpoint.save(sys.argv[2], [G, D], {"preset": sys.argv[1], "overrides": {}, "epoch": 0, "batch_in_epoch": 0,
                                      "step": 0, "seed": 0, "rng": None, "world": 1})
"""


def cli(*args):
    """Run ``ms-gan ARGS`` in the repository; returns the seconds it took."""
    command = [sys.executable, "-m", "ms_gan", *map(str, args)]
    print("$ ms-gan " + " ".join(map(str, args)), flush=True)
    start = time.time()
    subprocess.run(command, cwd=ROOT, check=True, env=dict(os.environ, PYTHONPATH=ROOT))
    return time.time() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="/tmp/eval_table", help="folder for classifiers, runs and reports")
    parser.add_argument("--n", type=int, default=1000, help="generated images per evaluation")
    parser.add_argument("--presets", nargs="*", default=[name for name, _ in RUNS])
    args = parser.parse_args(argv)
    sys.path.insert(0, ROOT)
    from ms_gan import presets

    os.makedirs(args.out, exist_ok=True)
    rows = []
    for name, flags in RUNS:
        if name not in args.presets:
            continue
        preset = presets.get(name)
        shape = (preset.image_size, preset.channels)
        clf = None
        if shape != (8, 1):
            clf = os.path.join(args.out, f"classifier_{shape[0]}x{shape[0]}x{shape[1]}.ckpt")
            if not os.path.isfile(clf):
                cli("train-classifier", "--data", "builtin", "--preset", name, "--epochs",
                    CLASSIFIER_EPOCHS[shape], "--out", clf)
        run = os.path.join(args.out, "runs", name)
        train_seconds = cli("train", "--preset", name, "--data", "builtin", "--out", run, "--log-every", "0",
                            "--no-progress", *flags)
        untrained = os.path.join(args.out, f"untrained_{name}.ckpt")
        subprocess.run([sys.executable, "-c", UNTRAINED, name, untrained], cwd=ROOT, check=True,
                       env=dict(os.environ, PYTHONPATH=ROOT))
        for label, ckpt in (("trained", run), ("untrained", untrained)):
            report_path = os.path.join(args.out, f"{name}_{label}.json")
            cli("eval", "--ckpt", ckpt, "--data", "builtin", "--n", args.n, "--out", report_path,
                *(["--classifier", clf] if clf else []))
            with open(report_path) as f:
                report = json.load(f)
            rows.append({"preset": name, "generator": label, "train_flags": flags if label == "trained" else [],
                         "train_seconds": round(train_seconds, 1) if label == "trained" else 0,
                         "step": report["generator"].get("step"), "summary": report["summary"],
                         "baseline": report["baseline"], "extractor": report["extractor"],
                         "protocol": report["protocol"]})
    with open(os.path.join(args.out, "table.json"), "w") as f:
        json.dump(rows, f, indent=1)
    print(markdown(rows))


def markdown(rows):
    lines = ["| preset (shape) | generator | classifier (held-out acc.) | FCD ↓ | real vs real FCD | KID | "
             "classifier score | precision | recall | classes | D acc. real / fake |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        s, b, e, p = row["summary"], row["baseline"], row["extractor"], row["protocol"]
        gen = (f"{' '.join(row['train_flags'])} ({row['train_seconds']:.0f} s)" if row["generator"] == "trained"
               else "untrained (seed 0)")
        shape = f"{p['input_size']}x{p['input_size']}x{p['input_channels']}"
        d_acc = (f"{s['d_accuracy_real']:.2f} / {s['d_accuracy_fake']:.2f}" if "d_accuracy_real" in s else "-")
        lines.append(f"| `{row['preset']}` ({shape}) | {gen} | {e['name']} {e['sha256'][:8]} "
                     f"({e['heldout_accuracy']:.3f}) | {s['fcd']:.1f} | {b['fcd']:.2f} | {s['kid_mean']:.3f} | "
                     f"{s['classifier_score']:.2f} | {s['precision']:.3f} | {s['recall']:.3f} | "
                     f"{s['classes_present']} | {d_acc} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
