"""``ms-gan eval`` and ``ms-gan train-classifier``."""
import sys

from ms_gan.cli import common
from ms_gan.errors import UserError


def register(sub):
    p = sub.add_parser("eval", help="score a checkpoint or MindIR with classifier metrics (FCD, KID, ...) or Inception")
    common.add_generator_source(p)
    p.add_argument("--data", default="builtin",
                   help="reference data: 'builtin' (default, all 1,797 digits), an MNIST folder (t10k), an image "
                        "folder or a .npy/.npz (all images), read at the generator's size and channels")
    p.add_argument("--n", type=common.positive_int, default=10000, help="generated images (default 10000)")
    p.add_argument("--classifier", default=None,
                   help="classifier checkpoint of the generator's size and channels (default: the shipped one, for "
                        "the built-in digits at 8x8 gray; else make one with 'ms-gan train-classifier --data D "
                        "--size S --channels C --out FILE')")
    p.add_argument("--extractor", choices=("classifier", "inception"), default="classifier",
                   help="features: the digit classifier (FCD, KID, ...; default) or the FID Inception-v3 "
                        "(FID, KID, IS; needs --inception-weights)")
    p.add_argument("--inception-weights", metavar="FILE.ckpt", default=None,
                   help="FID Inception-v3 checkpoint made by 'ms-gan convert --inception-weights "
                        "pt_inception-2015-12-05-6726825d.pth --out inception_fid.ckpt'")
    p.add_argument("--seed", type=common.non_negative_int, default=0,
                   help="seed of noise, KID subsets and baseline halves")
    p.add_argument("--out", default=None, help="write the full report (with provenance) to this .json")
    common.add_device_flags(p, with_mode=False)
    p.set_defaults(func=evaluate)

    p = sub.add_parser("train-classifier", help="train the classifier the metrics use, on any labelled data")
    p.add_argument("--data", default="builtin",
                   help="labelled images: 'builtin' (digits), an MNIST IDX folder, an image folder with one "
                        "sub-folder per class, or a .npz with 'images' and 'labels'")
    p.add_argument("--size", type=common.positive_int, default=None,
                   help="input size S (SxS, 8..128; default: --preset's, else the data's own); the data is "
                        "resized as the training pipeline does")
    p.add_argument("--channels", type=int, choices=(1, 3), default=None,
                   help="1 (gray) or 3 (RGB) (default: --preset's, else the data's own)")
    p.add_argument("--preset", default=None,
                   help="take --size and --channels from this preset (the classifier then scores its generator)")
    p.add_argument("--out", required=True, help="output .ckpt (a .ckpt.json with its metadata is written too)")
    p.add_argument("--epochs", type=common.positive_int, default=None,
                   help="default 30 (8x8), 8 (28x28), else 10")
    p.add_argument("--batch-size", type=common.positive_int, default=64, help="images per step (default 64)")
    p.add_argument("--lr", type=common.positive_float, default=1e-3, help="Adam learning rate (default 1e-3)")
    p.add_argument("--seed", type=common.non_negative_int, default=0,
                   help="seed of weights, batch order and augmentation")
    common.add_device_flags(p, with_mode=False)
    p.set_defaults(func=train_classifier)


def evaluate(args):
    from ms_gan import checkpoint as ckpt_io
    from ms_gan.generate import check_count, check_one_source

    check_one_source(args.ckpt, args.mindir)
    if args.out is not None:
        common.check_output_file(args.out, "--out", (".json",))
    check_count(args.n)
    if args.extractor == "inception":
        from ms_gan.eval.inception import check_weights_path

        if args.classifier is not None:
            raise UserError("--classifier applies to --extractor classifier; Inception metrics use "
                            "--inception-weights only")
        check_weights_path(args.inception_weights)  # one line before MindSpore starts
    elif args.inception_weights is not None:
        raise UserError("--inception-weights needs --extractor inception")
    common.setup_device(args)
    from ms_gan.eval.evaluate import evaluate as run_evaluation
    from ms_gan.eval.evaluate import evaluate_inception

    if args.extractor == "inception":
        report = evaluate_inception(ckpt=args.ckpt, mindir=args.mindir, data=args.data, n=args.n,
                                    weights=args.inception_weights, seed=args.seed, use_ema=not args.no_ema)
    else:
        report = run_evaluation(ckpt=args.ckpt, mindir=args.mindir, data=args.data, n=args.n,
                                classifier=args.classifier, seed=args.seed, use_ema=not args.no_ema)
    if args.out:
        ckpt_io.write_json(args.out, report)
    for warning in report.get("warnings", []):
        sys.stderr.write(f"ms-gan: warning: {warning}\n")
    s, b = report["summary"], report.get("baseline", {})
    ext = report["extractor"]
    print(f"{report['generator']['preset']} ({report['generator']['kind']} {report['generator']['path']}): "
          f"{report['n_generated']} generated vs {report['reference']['n']} real ({report['reference']['split']}), "
          f"extractor {ext['name']} sha256 {ext['sha256'][:12]}, seed {report['seed']}")
    print(f"{'metric':<18}{'generated':>12}{'real vs real':>14}")
    for key in ("fid", "inception_score", "fcd", "kid_mean", "kid_std", "classifier_score", "precision", "recall", "classes_present",
                "class_kl_to_uniform", "d_accuracy_real", "d_accuracy_fake"):
        if key in s:
            base = b.get(key)
            print(f"{key:<18}{s[key]:>12.4f}{'' if base is None else format(base, '>14.4f')}")
    if args.out:
        print(f"wrote {args.out}")
    return 0


def classifier_shape(args):
    """(size, channels) of train-classifier: --size/--channels, else --preset's, else the data's own."""
    from ms_gan.eval import classifier

    size, channels = args.size, args.channels
    if args.preset is not None:
        from ms_gan import presets

        preset = presets.get(args.preset)
        for flag, given, own in (("--size", size, preset.image_size), ("--channels", channels, preset.channels)):
            if given is not None and given != own:
                raise UserError(f"{flag} {given} contradicts --preset {preset.name} ({own}); give one of them")
        size, channels = preset.image_size, preset.channels
    if size is None or channels is None:
        own_size, own_channels = classifier.native_shape(args.data)
        size, channels = size or own_size, channels or own_channels
    classifier.check_shape(size, channels)
    return size, channels


def train_classifier(args):
    common.check_output_file(args.out, "--out", (".ckpt",))
    common.check_output_file(args.out + ".json", "--out")
    from ms_gan.eval import classifier

    classifier.labels_of(args.data)  # one-line errors (no labels, bad data) before MindSpore starts
    size, channels = classifier_shape(args)
    common.setup_device(args, seed=args.seed)
    net, meta = classifier.train(args.data, size, channels, epochs=args.epochs, batch_size=args.batch_size,
                                 lr=args.lr, seed=args.seed)
    digest = classifier.save(net, meta, args.out)
    print(f"wrote {args.out}: {size}x{size} {channels}-channel {meta['classes']}-class classifier of "
          f"{meta['dataset']}, held-out accuracy {meta['heldout_accuracy']:.4f} on {meta['n_heldout']} images "
          f"({meta['heldout_split']}), data fingerprint {meta['data_fingerprint'][:12]}, sha256 {digest}")
    return 0
