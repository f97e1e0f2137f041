"""Evaluate a generator against real digits with a digit classifier's features.

:func:`evaluate` generates ``n`` images (from a checkpoint or an exported MindIR),
resizes them to the classifier's input size, extracts its penultimate features and
softmax outputs, and compares them with the reference set:

* FCD (Fréchet classifier distance), KID (mean, std), classifier score, precision
  and recall (k=3), class coverage (:mod:`ms_gan.eval.metrics`);
* D's accuracy on held-out real images and on the generated ones, when the
  checkpoint has a D;
* the same distances between two disjoint halves of the reference set (the
  real-vs-real baseline), so every number has a scale.

Every result carries its provenance: metric, value, numbers of generated and
reference samples, reference split, extractor name and the sha256 of its
checkpoint, seed. FCD and KID depend on the sample sizes (FCD is biased upwards
for small sets), so only numbers with equal ``n_generated``/``n_reference`` and the
same extractor hash compare.
"""
import os

import numpy as np

from ms_gan import checkpoint as ckpt_io
from ms_gan import seeds
from ms_gan.errors import UserError
from ms_gan.eval import metrics
from ms_gan.generate import balanced_classes, generate_images

RESULT_FORMAT = "ms_gan-eval-1"
KID_SUBSET = 1000
KID_SUBSETS = 100
PR_K = 3
_REFERENCE_CACHE = {}


# ---------------------------------------------------------------------------- reference data


def reference_size(data):
    """(side of the reference images, split name) of a --data value, without decoding the images.

    ``builtin``: 8, all 1,797 digits. MNIST folder: 28, its t10k files. Image folders
    (from the file headers) and arrays: their one square size, all images.
    """
    from ms_gan.data import resolve_source, sources

    kind, path = resolve_source(data)
    if kind == "builtin":
        return 8, "all"
    if kind == "mnist":
        sources.prepare_mnist_dir(path, "test")
        return 28, "t10k"
    if kind == "folder":
        sizes = list(sources.image_sizes(path)) or [(0, 0)]
    else:
        raw, _ = sources.read_array(path)
        sizes = [raw.shape[1:3]]
    if len(sizes) != 1 or sizes[0][0] != sizes[0][1] or not sizes[0][0]:
        raise UserError(f"--data {data}: reference images must all have one square size, got "
                        f"{', '.join(f'{h}x{w}' for h, w in sizes)}")
    return int(sizes[0][0]), "all"


def check_classifier(data, classifier=None, channels=None, data_flag="--data"):
    """Check, before any network is built, that a digit classifier can score images against ``data``.

    Compares the classifier's metadata (:func:`ms_gan.eval.classifier.read_meta`: image
    size, channels, classes) with the reference data (size, labels) and with the
    generator's ``channels`` when known. Returns the metadata.

    Raises:
        UserError: one line naming the classifier and the data and saying what to do.
    """
    from ms_gan.data import resolve_source, sources
    from ms_gan.eval import classifier as clf_mod

    meta = clf_mod.read_meta(classifier)
    which = "the built-in digits classifier" if classifier is None else "classifier"
    _check_size(data, meta["resolution"], f"{which} {meta['path']}", data_flag)
    kind, path = resolve_source(data)
    if channels is not None and int(channels) != meta["channels"]:
        raise UserError(f"{which} {meta['path']} reads {meta['channels']}-channel images but the generator makes "
                        f"{channels}-channel ones; the digit metrics need a grayscale preset")
    if kind == "mnist":
        folder = sources.prepare_mnist_dir(path, "test")
        top = int(sources.read_idx(os.path.join(folder, sources.MNIST_FILES["test"][1])).max())
        if top >= meta["classes"]:
            raise UserError(f"{which} {meta['path']} knows {meta['classes']} classes but {data_flag} {data} has "
                            f"label {top}; train one on this data with 'ms-gan train-classifier'")
    return meta


def _check_size(data, side, classifier_name, data_flag="--data"):
    """UserError unless the reference ``data`` has the classifier's image size ``side``; returns the split."""
    from ms_gan.data import resolve_source

    native, split = reference_size(data)
    if native == side:
        return split
    if resolve_source(data)[0] in ("builtin", "mnist"):
        todo = f"run 'ms-gan train-classifier --data {data} --out FILE' and pass --classifier FILE"
    else:
        todo = "digit classifiers exist for 8x8 (--data builtin) and 28x28 (MNIST) images: use such data"
    raise UserError(f"{classifier_name} takes {side}x{side} images but {data_flag} {data} holds "
                    f"{native}x{native} images; {todo}")


def reference_images(data, size):
    """Real images for a classifier of ``size``: (images (N, 1, S, S) in [-1, 1], split name, labels).

    The data must have the classifier's resolution (:func:`reference_size`): a classifier
    of another resolution would compare resized real digits, which is not what it was
    trained on.
    """
    from ms_gan.data import ImageSpec, load_images, resolve_source

    split = _check_size(data, size, "the classifier")
    kind = resolve_source(data)[0]
    images, labels = load_images(data, ImageSpec(size, 1), usage="test" if kind == "mnist" else "train")
    if len(images) < 2 * (PR_K + 1):
        raise UserError(f"--data {data} has {len(images)} images; evaluation needs at least {2 * (PR_K + 1)}")
    return images, split, labels


def reference_features(classifier, data):
    """(features, probs, split) of the reference set, cached per (data, classifier hash)."""
    key = (str(data), classifier.sha256)
    if key not in _REFERENCE_CACHE:
        images, split, _ = reference_images(data, classifier.size)
        feats, probs = classifier.predict(images)
        _REFERENCE_CACHE[key] = (feats, probs, split)
    return _REFERENCE_CACHE[key]


# ---------------------------------------------------------------------------- generators


def _d_accuracy(D, preset, images, real):
    """Share of ``images`` D classifies as real (``real=True``) or as fake."""
    import mindspore as ms

    from ms_gan.models import primary

    outs = []
    for start in range(0, len(images), 256):
        outs.append(primary(D(ms.Tensor(np.ascontiguousarray(images[start:start + 256], np.float32)))).asnumpy())
    out = np.concatenate(outs).reshape(-1)
    threshold = 0.5 if preset.d_output == "prob" else 0.0
    said_real = out > threshold
    return float(np.mean(said_real if real else ~said_real))


def _d_heldout_real(data, preset):
    """Real images at D's resolution for the D accuracy, and the split's name."""
    from ms_gan.data import ImageSpec, load_images, resolve_source
    from ms_gan.data.builtin import split_indices

    kind, _ = resolve_source(data)
    spec = ImageSpec(preset.image_size, preset.channels)
    if kind == "builtin":
        images, _ = load_images(data, spec)
        # The GAN trains on all 1,797 digits: this split is held out from the classifier only.
        return images[split_indices(len(images))[1]], "builtin held-out split (seen by the GAN in training)"
    if kind == "mnist":
        images, _ = load_images(data, spec, usage="test")
        return images, "t10k"
    images, _ = load_images(data, spec)
    return images, "all (not held out)"


# ---------------------------------------------------------------------------- evaluation


def _result(metric, value, comparison, n_gen, n_ref, split, extractor, seed, **extra):
    record = {"metric": metric, "value": value, "comparison": comparison, "n_generated": int(n_gen),
              "n_reference": int(n_ref), "reference_split": split, "extractor": extractor["name"],
              "extractor_sha256": extractor["sha256"], "seed": int(seed)}
    record.update(extra)
    return record


def compare_features(gen_feats, gen_probs, ref_feats, ref_probs, seed=0, kid_subsets=KID_SUBSETS):
    """All feature metrics of generated vs reference features, as a flat dict."""
    subset = min(KID_SUBSET, len(gen_feats), len(ref_feats))
    kid_mean, kid_std = metrics.kid(gen_feats, ref_feats, num_subsets=kid_subsets, subset_size=subset, seed=seed)
    precision, recall = metrics.precision_recall(ref_feats, gen_feats, k=PR_K)
    splits = max(1, min(10, len(gen_probs) // 100))
    score, score_std = metrics.classifier_score(gen_probs, splits=splits)
    coverage = metrics.class_coverage(gen_probs.argmax(axis=1), gen_probs.shape[1])
    return {"fcd": metrics.frechet_feature_distance(gen_feats, ref_feats), "kid_mean": kid_mean,
            "kid_std": kid_std, "kid_subset_size": subset, "precision": precision, "recall": recall,
            "classifier_score": score, "classifier_score_std": score_std, "classifier_score_splits": splits,
            "coverage": coverage}


def _records(values, comparison, n_gen, n_ref, split, extractor, seed):
    out = [
        _result("fcd", values["fcd"], comparison, n_gen, n_ref, split, extractor, seed),
        _result("kid", values["kid_mean"], comparison, n_gen, n_ref, split, extractor, seed,
                std=values["kid_std"], subset_size=values["kid_subset_size"], num_subsets=KID_SUBSETS,
                kernel="cubic polynomial (x.y/d+1)^3, unbiased"),
        _result("classifier_score", values["classifier_score"], comparison, n_gen, n_ref, split, extractor, seed,
                std=values["classifier_score_std"], splits=values["classifier_score_splits"]),
        _result("precision", values["precision"], comparison, n_gen, n_ref, split, extractor, seed, k=PR_K),
        _result("recall", values["recall"], comparison, n_gen, n_ref, split, extractor, seed, k=PR_K),
        _result("class_coverage", values["coverage"]["classes_present"], comparison, n_gen, n_ref, split,
                extractor, seed, histogram=values["coverage"]["histogram"],
                kl_to_uniform=values["coverage"]["kl_to_uniform"]),
    ]
    return out


def evaluate_images(images, classifier, data="builtin", seed=0, kid_subsets=KID_SUBSETS, baseline=True):
    """Metrics of generated ``images`` (N, C, H, W in [-1, 1]) against the reference set.

    Returns:
        dict with ``results`` (list of records with provenance), ``summary``
        (metric -> value for the generated images) and ``baseline`` (metric -> value
        between two disjoint halves of the reference set, when ``baseline``).
    """
    images = classifier_input(images, classifier)
    extractor = classifier.provenance()
    ref_feats, ref_probs, split = reference_features(classifier, data)
    gen_feats, gen_probs = classifier.predict(images)
    if len(gen_feats) < PR_K + 1:
        raise UserError(f"evaluation needs at least {PR_K + 1} generated images; got {len(gen_feats)}")
    values = compare_features(gen_feats, gen_probs, ref_feats, ref_probs, seed, kid_subsets)
    results = _records(values, "generated_vs_reference", len(gen_feats), len(ref_feats), split, extractor, seed)
    summary = _summary(values)
    out = {"results": results, "summary": summary}
    if baseline:
        order = np.random.default_rng([int(seed), seeds.BASELINE_SPLIT]).permutation(len(ref_feats))
        half = len(order) // 2
        a, b = order[:half], order[half:2 * half]
        base = compare_features(ref_feats[a], ref_probs[a], ref_feats[b], ref_probs[b], seed, kid_subsets)
        base_split = f"{split}: two disjoint random halves (seed {seed})"
        results += _records(base, "real_vs_real", half, half, base_split, extractor, seed)
        out["baseline"] = _summary(base)
    return out


def _summary(values):
    return {"fcd": values["fcd"], "kid_mean": values["kid_mean"], "kid_std": values["kid_std"],
            "classifier_score": values["classifier_score"], "precision": values["precision"],
            "recall": values["recall"], "classes_present": values["coverage"]["classes_present"],
            "class_kl_to_uniform": values["coverage"]["kl_to_uniform"]}


def classifier_input(images, classifier):
    """Generated images checked and resized to the classifier's input."""
    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 4:
        raise UserError(f"expected images (N, C, H, W); got shape {images.shape}")
    if images.shape[1] != 1:
        raise UserError(f"the digit classifier reads grayscale images; these have {images.shape[1]} channels "
                        f"(a preset for colour images cannot be scored with digit metrics)")
    from ms_gan.eval.classifier import resize_images

    return resize_images(images, classifier.size)


def load_source(ckpt=None, mindir=None, with_d=True, use_ema=True):
    """(G callable, preset, D or None, description dict) from a checkpoint or an exported MindIR."""
    from ms_gan.generate import check_one_source, load_mindir, load_network, read_sidecar

    check_one_source(ckpt, mindir)
    if mindir is not None:
        G, preset = load_mindir(mindir)
        side = read_sidecar(mindir)
        return G, preset, None, {"kind": "mindir", "path": os.path.abspath(mindir), "preset": preset.name,
                                 "overrides": side.get("overrides", {}), "step": side.get("step"),
                                 "sha256": ckpt_io.file_sha256(mindir)}
    path = ckpt_io.resolve(ckpt)
    params_meta = ckpt_io.load(path)
    preset, G, meta, path = load_network(path, "g", use_ema, params_meta)
    D = None
    if with_d and any(name.startswith(preset.param_prefixes[1] + ".") for name in params_meta[0]):
        _, D, _, _ = load_network(path, "d", params_meta=params_meta)
    return G, preset, D, {"kind": "checkpoint", "path": os.path.abspath(path), "preset": preset.name,
                          "overrides": meta.get("overrides", {}), "step": meta.get("step"),
                          "epoch": meta.get("epoch"), "sha256": ckpt_io.file_sha256(path),
                          "ema_weights": bool(meta.get("used_ema"))}


def sample_size_warning(n):
    """A one-line warning when ``n`` generated images are too few for FCD/KID to mean much, else None.

    Below KID_SUBSET (1000) images the KID subsets are the whole set and FCD's 128x128
    covariance is poorly estimated. Measured real-vs-real FCD on the built-in digits (two
    random halves, ``n`` drawn from one): 576 at n=4, 37 at 64, 20 at 128, 5.3 at 512,
    3.4 at 898, against 58 for the shipped 50-epoch G at n=10000.
    """
    if int(n) >= KID_SUBSET:
        return None
    return (f"--n {n} is below {KID_SUBSET} generated images: FCD is biased upwards (real vs real digits gives "
            f"576 at n=4, 20 at 128, 5.3 at 512, 3.4 at 898) and KID's +- is too wide to compare runs; "
            f"use --n 10000 for numbers that compare")


def evaluate(ckpt=None, mindir=None, data="builtin", n=10000, classifier=None, seed=0, kid_subsets=KID_SUBSETS,
             use_ema=True):
    """Full evaluation of a checkpoint or MindIR; returns the JSON-able report.

    Args:
        ckpt: checkpoint file or run directory (exclusive with ``mindir``).
        mindir: exported generator (.mindir with its .json sidecar).
        data: reference data: 'builtin' or an MNIST folder (or images of the classifier's size).
        n: number of generated images.
        classifier: path of a classifier checkpoint (default: the shipped one).
        seed: seed of the noise, the KID subsets and the baseline halves.
    """
    from ms_gan.eval import classifier as clf_mod

    if int(n) < PR_K + 1:
        raise UserError(f"--n must be at least {PR_K + 1}")
    check_classifier(data, classifier)
    clf = clf_mod.load(classifier)
    reference_features(clf, data)  # validates data vs classifier before generating anything
    G, preset, D, source = load_source(ckpt, mindir, use_ema=use_ema)
    if preset.channels != 1:
        raise UserError(f"preset {preset.name} makes {preset.channels}-channel images; the digit metrics need "
                        f"a grayscale digits preset")
    images = generate_images(G, preset, int(n), seed)
    report = evaluate_images(images, clf, data, seed, kid_subsets)
    extractor = clf.provenance()
    ref_n = len(reference_features(clf, data)[0])
    if preset.num_classes:   # a conditional G made the classes in turn (generate.balanced_classes)
        report["summary"].update(class_recognition(images, balanced_classes(preset, int(n)), clf))
    if D is not None and not preset.num_classes:   # a conditional D needs each image's class: not measured
        real, real_split = _d_heldout_real(data, preset)
        acc_real = _d_accuracy(D, preset, real, real=True)
        acc_fake = _d_accuracy(D, preset, images, real=False)
        common = dict(n_generated=len(images), n_reference=len(real), reference_split=real_split,
                      extractor=f"discriminator of {preset.name}", extractor_sha256=source["sha256"], seed=int(seed))
        report["results"].append(dict(metric="d_accuracy_real", value=acc_real, comparison="d_on_real",
                                      threshold=0.5 if preset.d_output == "prob" else 0.0, **common))
        report["results"].append(dict(metric="d_accuracy_fake", value=acc_fake, comparison="d_on_generated",
                                      threshold=0.5 if preset.d_output == "prob" else 0.0, **common))
        report["summary"]["d_accuracy_real"] = acc_real
        report["summary"]["d_accuracy_fake"] = acc_fake
    report.update({
        "format": RESULT_FORMAT, "generator": source, "n_generated": int(n), "seed": int(seed),
        "reference": {"data": str(data), "split": report["results"][0]["reference_split"], "n": ref_n},
        "extractor": extractor,
    })
    warning = sample_size_warning(n)
    if warning:
        report["warnings"] = [warning]
    return report


def class_recognition(images, classes, classifier):
    """How often the classifier recognises the class a conditional G was asked for.

    Returns ``{"recognition_rate": share of images classified as their asked class,
    "recognition_per_class": {class: share}}`` (classes the classifier does not know count as missed).
    """
    _, probs = classifier.predict(classifier_input(images, classifier))
    hit = probs.argmax(axis=1) == np.asarray(classes)
    per_class = {str(int(k)): float(hit[classes == k].mean()) for k in np.unique(classes)}
    return {"recognition_rate": float(hit.mean()), "recognition_per_class": per_class}


def quick_fcd_kid(G_callable, preset, data="builtin", n=2000, seed=0, classifier=None):
    """FCD and KID of a generator for in-training evaluation (``--eval-every``).

    Args:
        G_callable: takes a float32 Tensor (N, z_dim), returns images (or a tuple led by images).
            Put a Cell in eval mode first.
        preset: the G's preset (noise distribution, z_dim).
        data: reference data ('builtin' or an MNIST folder); reference features are cached.
        n: generated images.
        seed: noise and KID subset seed (keep it fixed across a run so values compare).
        classifier: classifier path (default: the shipped built-in-digits one).

    Returns:
        dict ``{"fcd", "kid_mean", "kid_std", "n_generated", "n_reference", "extractor_sha256", "seed"}``.
    """
    from ms_gan.eval import classifier as clf_mod

    clf = _cached_classifier(classifier, clf_mod)
    ref_feats, _, _ = reference_features(clf, data)
    images = classifier_input(generate_images(G_callable, preset, int(n), seed), clf)
    feats, _ = clf.predict(images)
    subset = min(KID_SUBSET, len(feats), len(ref_feats))
    kid_mean, kid_std = metrics.kid(feats, ref_feats, num_subsets=50, subset_size=subset, seed=seed)
    return {"fcd": metrics.frechet_feature_distance(feats, ref_feats), "kid_mean": kid_mean, "kid_std": kid_std,
            "n_generated": int(n), "n_reference": int(len(ref_feats)), "extractor_sha256": clf.sha256,
            "seed": int(seed)}


_CLASSIFIERS = {}


def _cached_classifier(path, clf_mod):
    key = os.path.abspath(os.path.expanduser(str(path or clf_mod.DEFAULT_CLASSIFIER)))
    if key not in _CLASSIFIERS:
        _CLASSIFIERS[key] = clf_mod.load(key)
    return _CLASSIFIERS[key]


# ---------------------------------------------------------------------------- Inception FID / KID / IS


IS_SPLITS = 10


def inception_reference(data, preset):
    """Real images as the GAN saw them: (N, C, S, S) in [-1, 1] at the preset's size and channels, split name.

    The reference goes through the training pipeline (Pillow bilinear resize when the
    source's size differs, RGB -> luma for gray presets), so that only the
    generator's distribution differs from it, not its preprocessing.
    """
    from ms_gan.data import ImageSpec, load_images, resolve_source

    kind, _ = resolve_source(data)
    images, _ = load_images(data, ImageSpec(preset.image_size, preset.channels),
                            usage="test" if kind == "mnist" else "train")
    if len(images) < 4:
        raise UserError(f"--data {data} has {len(images)} images; Inception metrics need at least 4 "
                        f"(two per half for the real-vs-real baseline)")
    return images, "t10k" if kind == "mnist" else "all"


def inception_protocol(extractor, preset, n_gen, n_ref, split, seed, kid_subset, kid_subsets, is_splits):
    """Everything FID/KID/IS depend on besides the generator, for every record."""
    from ms_gan.eval import inception

    size = preset.image_size
    return {
        "extractor": extractor["name"], "weights_sha256": extractor["sha256"],
        "weights_source": {"file": extractor.get("source_file"), "sha256": extractor.get("source_sha256")},
        "feature_layer": extractor["feature_layer"], "is_logits": extractor["is_logits"],
        "resize": "bilinear, align_corners=False, no antialiasing (torch.nn.functional.interpolate, as pytorch-fid)",
        "input_size": inception.INPUT_SIZE, "input_scaling": "uint8 / 255, then 2 x - 1",
        "generated_quantization": "uint8(255 * (clip(x, -1, 1) + 1) / 2), truncating (torch-fidelity)",
        "reference_quantization": "round(255 * v) of the pipeline's [0, 1] image",
        "reference_preprocessing": f"training pipeline at {size}x{size}, {preset.channels} channel(s) "
                                   f"(Pillow bilinear when the source differs)",
        "gray_to_rgb": "gray channel replicated to R, G, B" if preset.channels == 1 else "none (RGB)",
        "n_generated": int(n_gen), "n_reference": int(n_ref), "reference_split": split, "seed": int(seed),
        "kid": {"subset_size": int(kid_subset), "num_subsets": int(kid_subsets),
                "kernel": "cubic polynomial (x.y/d+1)^3, unbiased"},
        "is_splits": int(is_splits),
    }


def inception_metrics(gen_feats, gen_logits, ref_feats, ref_logits, seed=0, kid_subsets=KID_SUBSETS):
    """FID, KID (subset min(1000, n), ``kid_subsets`` subsets) and IS (10 splits, or n if fewer) as a flat dict."""
    subset = min(KID_SUBSET, len(gen_feats), len(ref_feats))
    kid_mean, kid_std = metrics.kid(gen_feats, ref_feats, num_subsets=kid_subsets, subset_size=subset, seed=seed)
    splits = min(IS_SPLITS, len(gen_logits))
    score, score_std = metrics.inception_score(gen_logits, splits=splits)
    return {"fid": metrics.frechet_feature_distance(gen_feats, ref_feats), "kid_mean": kid_mean, "kid_std": kid_std,
            "kid_subset_size": subset, "inception_score": score, "inception_score_std": score_std,
            "is_splits": splits}


def _inception_records(values, comparison, protocol, extractor, seed):
    n_gen, n_ref, split = protocol["n_generated"], protocol["n_reference"], protocol["reference_split"]
    return [
        _result("fid", values["fid"], comparison, n_gen, n_ref, split, extractor, seed, protocol=protocol),
        _result("kid", values["kid_mean"], comparison, n_gen, n_ref, split, extractor, seed, std=values["kid_std"],
                protocol=protocol),
        _result("inception_score", values["inception_score"], comparison, n_gen, n_ref, split, extractor, seed,
                std=values["inception_score_std"], protocol=protocol),
    ]


def evaluate_inception(ckpt=None, mindir=None, data="builtin", n=10000, weights=None, seed=0,
                       kid_subsets=KID_SUBSETS, use_ema=True, batch_size=16):
    """FID, KID and IS of a checkpoint or MindIR with the FID Inception-v3; returns the JSON-able report.

    Args:
        weights: the converted FID Inception checkpoint (``ms-gan convert --inception-weights``).
        data: any data source the presets take; read at the preset's size and channels.
        n: generated images.
        seed: seed of the noise, the KID subsets and the baseline halves.
        batch_size: images per Inception batch (16: the whole eval process peaked at 1.1 GB RSS).
    """
    from ms_gan.eval import inception

    inception.check_weights_path(weights)
    if int(n) < 2:
        raise UserError("--n must be at least 2 for Inception metrics")
    G, preset, _, source = load_source(ckpt, mindir, with_d=False, use_ema=use_ema)
    real, split = inception_reference(data, preset)
    net = inception.load(weights)
    extractor = net.provenance()
    # One batch shape for both sets: graph mode compiles the network once.
    batch_size = min(int(batch_size), max(int(n), len(real)))
    gen_feats, gen_logits = net.features(inception.quantize_generated(generate(G, preset, int(n), seed)), batch_size)
    ref_feats, ref_logits = net.features(inception.quantize_reference(real), batch_size)
    values = inception_metrics(gen_feats, gen_logits, ref_feats, ref_logits, seed, kid_subsets)
    protocol = inception_protocol(extractor, preset, len(gen_feats), len(ref_feats), split, seed,
                                  values["kid_subset_size"], kid_subsets, values["is_splits"])
    results = _inception_records(values, "generated_vs_reference", protocol, extractor, seed)
    order = np.random.default_rng([int(seed), 5]).permutation(len(ref_feats))
    half = len(order) // 2
    a, b = order[:half], order[half:2 * half]
    base = inception_metrics(ref_feats[a], ref_logits[a], ref_feats[b], ref_logits[b], seed, kid_subsets)
    base_protocol = inception_protocol(extractor, preset, half, half,
                                       f"{split}: two disjoint random halves (seed {seed})", seed,
                                       base["kid_subset_size"], kid_subsets, base["is_splits"])
    results += _inception_records(base, "real_vs_real", base_protocol, extractor, seed)
    keys = ("fid", "kid_mean", "kid_std", "inception_score", "inception_score_std")
    return {"format": RESULT_FORMAT, "results": results, "summary": {k: values[k] for k in keys},
            "baseline": {k: base[k] for k in keys}, "generator": source, "n_generated": int(n), "seed": int(seed),
            "reference": {"data": str(data), "split": split, "n": int(len(ref_feats))},
            "extractor": extractor, "protocol": protocol}
