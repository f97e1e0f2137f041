"""Evaluate a generator against real images with a classifier's features.

:func:`evaluate` generates ``n`` images (from a checkpoint or an exported MindIR), checks
that a classifier of their shape (size, channels) and of the data's classes scores them
(:func:`check_classifier`, before any network is built), extracts its penultimate
features and softmax outputs, and compares them with the reference set, which goes
through the training pipeline at the classifier's shape:

* FCD (Fréchet classifier distance), KID (mean, std), classifier score, precision
  and recall (k=3), class coverage (:mod:`ms_gan.eval.metrics`);
* D's accuracy on held-out real images and on the generated ones, when the
  checkpoint has a D;
* the same distances between two disjoint halves of the reference set (the
  real-vs-real baseline), so every number has a scale.

Every record carries its protocol (:func:`classifier_protocol`): extractor and its
sha256, input shape, resizing, numbers of generated and reference images, reference
split and fingerprint, KID settings, seed. FCD and KID depend on all of these (FCD is
biased upwards for small sets), so only numbers with equal protocols compare.
"""
import os

import numpy as np

from ms_gan import checkpoint as ckpt_io
from ms_gan import seeds
from ms_gan.errors import UserError
from ms_gan.eval import metrics
from ms_gan.eval.classifier import FEATURES
from ms_gan.generate import generate_images

RESULT_FORMAT = "ms_gan-eval-1"
KID_SUBSET = 1000
KID_SUBSETS = 100
PR_K = 3
_REFERENCE_CACHE = {}


# ---------------------------------------------------------------------------- reference data


def _default_or_refuse(data, size, channels, data_flag):
    """The shipped classifier when ``data`` is the built-in digits at 8x8 gray, else a UserError saying
    how to make a matching one (no other data has a classifier that ships)."""
    from ms_gan.data import resolve_source
    from ms_gan.eval import classifier as clf_mod

    if resolve_source(data)[0] == "builtin" and (int(size), int(channels)) == (8, 1):
        return clf_mod.DEFAULT_CLASSIFIER
    raise UserError(f"no classifier for {data_flag} {data} at {size}x{size} with {channels} channel(s) (the built-in "
                    f"digits classifier takes 8x8 gray built-in digits): make one with "
                    f"{make_command(data, size, channels)} and pass --classifier FILE")


def make_command(data, size, channels):
    return f"'ms-gan train-classifier --data {data} --size {size} --channels {channels} --out FILE'"


def check_classifier(data, classifier, size, channels, data_flag="--data"):
    """Check, before any network is built, that a classifier can score ``size`` x ``size`` images with
    ``channels`` channels (the generator's) against ``data``.

    ``classifier`` None means the shipped one, which only fits the built-in digits at 8x8
    gray. Compares the classifier's metadata (:func:`ms_gan.eval.classifier.read_meta`)
    with the generator's shape and the data's classes; when the classifier records the
    fingerprint of its training data and ``data`` at that shape has another one, the
    classifier is still usable (same shape and classes) but a warning says so.

    Returns:
        (metadata, list of warnings).

    Raises:
        UserError: one line naming the classifier and the data or generator, and the command
        that makes a matching classifier.
    """
    from ms_gan.eval import classifier as clf_mod

    meta = clf_mod.read_meta(classifier or _default_or_refuse(data, size, channels, data_flag))
    which = "the built-in digits classifier" if classifier is None else "classifier"
    have = (int(meta["resolution"]), int(meta["channels"]))
    if have != (int(size), int(channels)):
        raise UserError(f"{which} {meta['path']} takes {have[0]}x{have[0]} images with {have[1]} channel(s) but the "
                        f"generator makes {size}x{size} with {channels}: make a matching one with "
                        f"{make_command(data, size, channels)} and pass --classifier FILE")
    try:
        names, _ = clf_mod.labels_of(data)
    except UserError:
        names = None   # FCD/KID need no labels; only the fingerprint cannot match (warned below)
    if names is not None and len(names) > meta["classes"]:
        raise UserError(f"{which} {meta['path']} knows {meta['classes']} classes but {data_flag} {data} has "
                        f"{len(names)}: make a matching one with {make_command(data, size, channels)} and pass "
                        f"--classifier FILE")
    warnings = []
    trained_on = meta.get("data_fingerprint")
    if trained_on:   # files written before fingerprints were recorded (the shipped one) are not compared
        fingerprint = _fingerprint(data, size, channels) if names is not None else None
        if fingerprint != trained_on:
            warnings.append(
                f"{which} {meta['path']} was trained on other data than {data_flag} {data} (data fingerprint "
                f"{trained_on[:12]} vs {fingerprint[:12] if fingerprint else 'none: no labels'}); its shape and "
                f"classes match, so it is used, but its features were fitted to other images: compare its numbers "
                f"only with numbers from this classifier (same sha256) on this data")
    return meta, warnings


_FINGERPRINTS = {}


def _fingerprint(data, size, channels):
    """The data fingerprint (:func:`ms_gan.eval.classifier.data_fingerprint`) of a labelled source at a shape."""
    from ms_gan.eval import classifier as clf_mod

    key = (str(data), int(size), int(channels))
    if key not in _FINGERPRINTS:
        images, labels = clf_mod.labelled_images(data, size, channels)[:2]
        _FINGERPRINTS[key] = clf_mod.data_fingerprint(images, labels)
    return _FINGERPRINTS[key]


def reference_images(data, size, channels=1):
    """The reference set at a classifier's shape: (images (N, C, S, S) in [-1, 1], split name, labels).

    Images go through the training pipeline (:func:`ms_gan.data.load_images`): resized with
    Pillow's bilinear filter when their size differs, converted to gray (luma) or RGB
    (replicated), exactly as the GAN saw them. MNIST: its t10k files; other sources: all images.
    """
    from ms_gan.data import ImageSpec, load_images, resolve_source

    kind = resolve_source(data)[0]
    images, labels = load_images(data, ImageSpec(int(size), int(channels)), usage="test" if kind == "mnist" else "train")
    if len(images) < 2 * (PR_K + 1):
        raise UserError(f"--data {data} has {len(images)} images; evaluation needs at least {2 * (PR_K + 1)}")
    return images, "t10k" if kind == "mnist" else "all", labels


def reference_features(classifier, data):
    """(features, probs, split, fingerprint) of the reference set, cached per (data, classifier hash)."""
    from ms_gan.eval.classifier import data_fingerprint

    key = (str(data), classifier.sha256)
    if key not in _REFERENCE_CACHE:
        images, split, labels = reference_images(data, classifier.size, classifier.channels)
        feats, probs = classifier.predict(images)
        _REFERENCE_CACHE[key] = (feats, probs, split, data_fingerprint(images, labels))
    return _REFERENCE_CACHE[key]


def classifier_protocol(classifier, data, n_gen, n_ref, split, seed, kid_subset, kid_subsets, reference_fingerprint):
    """Everything the classifier metrics depend on besides the generator, for every record."""
    extractor = classifier.provenance()
    size, channels = classifier.size, classifier.channels
    return {
        "extractor": extractor["name"], "weights_sha256": extractor["sha256"],
        "feature_layer": f"penultimate Dense ({FEATURES} ReLU units)", "classes": extractor["classes"],
        "classifier_data_fingerprint": extractor["data_fingerprint"],
        "input_size": size, "input_channels": channels,
        "resize": "generated: none (the generator makes the classifier's shape); reference: Pillow bilinear on "
                  "[0, 1] floats when the source's size differs (the training pipeline)",
        "channel_conversion": "reference: the training pipeline's (RGB -> ITU-R 601-2 luma for gray, gray "
                              "replicated for RGB)",
        "quantization": "none (float32 in [-1, 1])",
        "reference_data": str(data), "reference_fingerprint": reference_fingerprint,
        "n_generated": int(n_gen), "n_reference": int(n_ref), "reference_split": split, "seed": int(seed),
        "kid": {"subset_size": int(kid_subset), "num_subsets": int(kid_subsets),
                "kernel": "cubic polynomial (x.y/d+1)^3, unbiased"},
    }


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


def _records(values, comparison, protocol, extractor, seed):
    n_gen, n_ref, split = protocol["n_generated"], protocol["n_reference"], protocol["reference_split"]
    common = dict(protocol=protocol)
    return [
        _result("fcd", values["fcd"], comparison, n_gen, n_ref, split, extractor, seed, **common),
        _result("kid", values["kid_mean"], comparison, n_gen, n_ref, split, extractor, seed,
                std=values["kid_std"], subset_size=values["kid_subset_size"], num_subsets=KID_SUBSETS,
                kernel="cubic polynomial (x.y/d+1)^3, unbiased", **common),
        _result("classifier_score", values["classifier_score"], comparison, n_gen, n_ref, split, extractor, seed,
                std=values["classifier_score_std"], splits=values["classifier_score_splits"], **common),
        _result("precision", values["precision"], comparison, n_gen, n_ref, split, extractor, seed, k=PR_K, **common),
        _result("recall", values["recall"], comparison, n_gen, n_ref, split, extractor, seed, k=PR_K, **common),
        _result("class_coverage", values["coverage"]["classes_present"], comparison, n_gen, n_ref, split,
                extractor, seed, histogram=values["coverage"]["histogram"],
                kl_to_uniform=values["coverage"]["kl_to_uniform"], **common),
    ]


def evaluate_images(images, classifier, data="builtin", seed=0, kid_subsets=KID_SUBSETS, baseline=True):
    """Metrics of generated ``images`` (N, C, S, S in [-1, 1], the classifier's shape) against the reference set.

    Returns:
        dict with ``results`` (list of records, each with its ``protocol``), ``protocol``
        (of the generated-vs-reference records), ``summary`` (metric -> value for the
        generated images) and ``baseline`` (metric -> value between two disjoint halves
        of the reference set, when ``baseline``).
    """
    images = classifier_input(images, classifier)
    extractor = classifier.provenance()
    ref_feats, ref_probs, split, ref_fingerprint = reference_features(classifier, data)
    gen_feats, gen_probs = classifier.predict(images)
    if len(gen_feats) < PR_K + 1:
        raise UserError(f"evaluation needs at least {PR_K + 1} generated images; got {len(gen_feats)}")
    values = compare_features(gen_feats, gen_probs, ref_feats, ref_probs, seed, kid_subsets)
    protocol = classifier_protocol(classifier, data, len(gen_feats), len(ref_feats), split, seed,
                                   values["kid_subset_size"], kid_subsets, ref_fingerprint)
    results = _records(values, "generated_vs_reference", protocol, extractor, seed)
    out = {"results": results, "summary": _summary(values), "protocol": protocol}
    if baseline:
        order = np.random.default_rng([int(seed), seeds.BASELINE_SPLIT]).permutation(len(ref_feats))
        half = len(order) // 2
        a, b = order[:half], order[half:2 * half]
        base = compare_features(ref_feats[a], ref_probs[a], ref_feats[b], ref_probs[b], seed, kid_subsets)
        base_protocol = classifier_protocol(classifier, data, half, half,
                                            f"{split}: two disjoint random halves (seed {seed})", seed,
                                            base["kid_subset_size"], kid_subsets, ref_fingerprint)
        results += _records(base, "real_vs_real", base_protocol, extractor, seed)
        out["baseline"] = _summary(base)
    return out


def _summary(values):
    return {"fcd": values["fcd"], "kid_mean": values["kid_mean"], "kid_std": values["kid_std"],
            "classifier_score": values["classifier_score"], "precision": values["precision"],
            "recall": values["recall"], "classes_present": values["coverage"]["classes_present"],
            "class_kl_to_uniform": values["coverage"]["kl_to_uniform"]}


def classifier_input(images, classifier):
    """Generated images checked against the classifier's shape (N, C, S, S); no resizing.

    A classifier scores the shape it was trained on; a generator of another shape needs a
    classifier of its own (:func:`check_classifier` refuses the pair before any work).
    """
    images = np.asarray(images, dtype=np.float32)
    want = (classifier.channels, classifier.size, classifier.size)
    if images.ndim != 4 or tuple(images.shape[1:]) != want:
        raise UserError(f"classifier {classifier.path} takes images (N, {want[0]}, {want[1]}, {want[2]}); "
                        f"got shape {images.shape}")
    return np.ascontiguousarray(images)


def generator_preset(ckpt=None, mindir=None):
    """The preset of a checkpoint or exported MindIR, from its metadata only (no network is built)."""
    from ms_gan.generate import check_one_source, preset_from_meta, read_sidecar

    check_one_source(ckpt, mindir)
    if mindir is not None:
        if not os.path.isfile(mindir):
            raise UserError(f"MindIR file {mindir!r} does not exist")
        return preset_from_meta(read_sidecar(mindir), mindir)
    path = ckpt_io.resolve(ckpt)
    return preset_from_meta(ckpt_io.read_meta(path), path)


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
        data: reference data: any source the presets take, read at the classifier's shape.
        n: number of generated images.
        classifier: path of a classifier checkpoint of the generator's shape (default: the
            shipped one, for the built-in digits at 8x8 gray only).
        seed: seed of the noise, the KID subsets and the baseline halves.
    """
    from ms_gan.eval import classifier as clf_mod

    if int(n) < PR_K + 1:
        raise UserError(f"--n must be at least {PR_K + 1}")
    preset = generator_preset(ckpt, mindir)
    meta, warnings = check_classifier(data, classifier, preset.image_size, preset.channels)
    clf = clf_mod.load(meta["path"])
    reference_features(clf, data)  # reads the data before generating anything
    G, preset, D, source = load_source(ckpt, mindir, use_ema=use_ema)
    images = generate_images(G, preset, int(n), seed)
    report = evaluate_images(images, clf, data, seed, kid_subsets)
    extractor = clf.provenance()
    ref_n = report["protocol"]["n_reference"]
    if D is not None:
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
        "reference": {"data": str(data), "split": report["protocol"]["reference_split"], "n": ref_n},
        "extractor": extractor,
    })
    warning = sample_size_warning(n)
    warnings = warnings + ([warning] if warning else [])
    if warnings:
        report["warnings"] = warnings
    return report


def quick_fcd_kid(G_callable, preset, data="builtin", n=2000, seed=0, classifier=None, kid_subsets=50):
    """FCD and KID of a generator for in-training evaluation (``--eval-every``).

    Args:
        G_callable: takes a float32 Tensor (N, z_dim), returns images (or a tuple led by images).
            Put a Cell in eval mode first.
        preset: the G's preset (noise distribution, z_dim, image shape = the classifier's).
        data: reference data, read at the classifier's shape; reference features are cached.
        n: generated images.
        seed: noise and KID subset seed (keep it fixed across a run so values compare).
        classifier: classifier path (default: the shipped built-in-digits one).
        kid_subsets: KID subsets (50: half the full evaluation's, for speed).

    Returns:
        dict ``{"fcd", "kid_mean", "kid_std", "n_generated", "n_reference", "extractor_sha256", "seed",
        "protocol"}`` (the protocol as in :func:`classifier_protocol`).
    """
    from ms_gan.eval import classifier as clf_mod

    clf = _cached_classifier(classifier, clf_mod)
    ref_feats, _, split, ref_fingerprint = reference_features(clf, data)
    images = classifier_input(generate_images(G_callable, preset, int(n), seed), clf)
    feats, _ = clf.predict(images)
    subset = min(KID_SUBSET, len(feats), len(ref_feats))
    kid_mean, kid_std = metrics.kid(feats, ref_feats, num_subsets=kid_subsets, subset_size=subset, seed=seed)
    protocol = classifier_protocol(clf, data, len(feats), len(ref_feats), split, seed, subset, kid_subsets,
                                   ref_fingerprint)
    return {"fcd": metrics.frechet_feature_distance(feats, ref_feats), "kid_mean": kid_mean, "kid_std": kid_std,
            "n_generated": int(n), "n_reference": int(len(ref_feats)), "extractor_sha256": clf.sha256,
            "seed": int(seed), "protocol": protocol}


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
    gen_feats, gen_logits = net.features(inception.quantize_generated(generate_images(G, preset, int(n), seed)), batch_size)
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
