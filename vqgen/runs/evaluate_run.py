"""How good a run is, without writing code: reconstruction, codebook usage, likelihood and samples.

`evaluate_run` measures a run on its validation split (or another source) and writes
`RUN/evaluation.json` and the pictures in `RUN/evaluation/`; `format_table` prints the figures.
How each figure is computed is in `vqgen.evaluation` (one small module per measure).
"""

import io
import json
import os

import keras
import numpy as np
import tensorflow as tf

from prior.registry import kind_of
from vqgen.data import load_images, to_dataset
from vqgen.evaluation import (
    bits_per_code,
    bits_per_dimension,
    classifier_predictions,
    codebook_usage,
    decoder_bits,
    decoder_scale,
    frechet_distance,
    high_frequency_ratio,
    psnr,
    reconstruction_frechet_distance,
    ssim,
    train_classifier,
    tuple_usage,
    usage_histogram_picture,
)
from vqgen.models.perceptual_loss import mean_perceptual_distance, vgg16_features
from vqgen.runs.atomic_file import write_bytes_atomically, write_text_atomically
from vqgen.runs.image_grid import save_comparison_grid, save_image_grid
from vqgen.runs.model_files import load_model_file, load_stage_model, save_model_file
from vqgen.runs.run_folder import RunFolder
from vqgen.runs.run_lock import locks_run
from vqgen.runs.sample_images import default_guidance
from vqgen.runs.train_vqvae import load_splits
from vqgen.settings import DATA_DEFAULTS, EVALUATE_DEFAULTS

EVALUATION_FOLDER = "evaluation"
CLASSIFIER_FILE = "classifier.keras"
# The LPIPS row without VGG16 weights.
LPIPS_ABSENT = "not measured: no --perceptual-network (VGG16 weights) given or recorded in the run"


def _float_images(image_set):
    """All images of an ImageSet as one float32 array in [0, 1]."""
    return np.concatenate([batch.numpy() for batch in to_dataset(image_set, 512)])


def reconstruction_figures(vqvae, images):
    """PSNR, SSIM and the high-frequency ratio of `vqvae`'s reconstructions of float `images`.

    Returns `(figures, reconstructions)`; the figures' `frechet_distance` (rFD) is None here: it
    needs the evaluation classifier (`evaluate_run` fills it in when it has one).
    """
    reconstructions = vqvae.reconstruct(images)
    per_image_psnr = psnr(images, reconstructions)
    per_image_ssim = ssim(images, reconstructions)
    return {
        "psnr_db": float(np.mean(per_image_psnr[np.isfinite(per_image_psnr)])),
        "ssim": float(np.mean(per_image_ssim)),
        "high_frequency_ratio": high_frequency_ratio(images, reconstructions),
        "frechet_distance": None,
    }, reconstructions


def usage_figures(vqvae, codes):
    """Codebook usage of a dataset's `codes` (`[N, h, w]`, or per level `[N, h, w, d]` for residual VQ)."""
    levels = [codes] if codes.ndim == 3 else [codes[..., level] for level in range(codes.shape[-1])]
    usages = [codebook_usage(level_codes, vqvae.num_embeddings) for level_codes in levels]
    figures = [{key: value for key, value in usage.items() if key != "counts"} for usage in usages]
    for figure, usage in zip(figures, usages):
        figure["counts"] = usage["counts"].tolist()
    return figures, [usage["counts"] for usage in usages]


def likelihood_figures(vqvae, prior, images, codes, reconstructions, labels, sigma):
    """Bits per code and bits per image dimension of `images` (see `vqgen.evaluation.likelihood`).

    A prior without an exact likelihood (`prior.registry`: MaskGIT) gets None for these figures;
    `masked_bits_per_code`, its masked-token loss on the images' codes
    (`prior.MaskGIT.masked_bits_per_code`), stands instead.
    """
    tokens = vqvae.to_token_grid(codes)
    positions = int(np.prod(tokens.shape[1:]))
    if not kind_of(prior).exact_likelihood:
        masked = prior.masked_bits_per_code(tokens, labels if prior.conditional else None)
        return {
            "bits_per_code": None,
            "masked_bits_per_code": masked,
            "prior_bits_per_dim": None,
            "bits_per_dim": None,
            "decoder_sigma": sigma,
            "conditional": bool(prior.conditional),
        }
    nats = prior.log_prob(tokens, labels if prior.conditional else None)
    per_code = bits_per_code(nats, positions)
    prior_bits = per_code * positions
    dimensions = int(np.prod(images.shape[1:]))
    return {
        "bits_per_code": float(np.mean(per_code)),
        "prior_bits_per_dim": float(np.mean(bits_per_dimension(prior_bits, 0.0, dimensions))),
        "bits_per_dim": float(
            np.mean(bits_per_dimension(prior_bits, decoder_bits(images, reconstructions, sigma), dimensions))
        ),
        "decoder_sigma": sigma,
        "conditional": bool(prior.conditional),
    }


def load_or_train_classifier(run, train_images, train_labels, num_classes, epochs, seed):
    """The run's evaluation classifier, trained once on its training split and cached in the run."""
    path = os.path.join(run.file(EVALUATION_FOLDER), CLASSIFIER_FILE)
    if os.path.isfile(path):
        return load_model_file(path, keras.Model)
    model = train_classifier(train_images, train_labels, num_classes, epochs=epochs, seed=seed)
    save_model_file(model, path)
    return model


def sample_figures(classifier, prior, vqvae, num_samples, seed, validation_images, train_features):
    """Label agreement of conditional samples and Fréchet distances in the classifier's feature space.

    The samples are drawn at the prior's default guidance scale (`default_guidance`: the scale
    measured for its kind when it was trained with label dropout, else 1). The Fréchet distances are
    measured against the training split's features; the floor is the same distance for `num_samples`
    real validation images (at most all of them).
    """
    labels = _requested_labels(num_samples, prior.num_classes) if prior.conditional else None
    guidance = default_guidance(prior)
    tokens = prior.sample(num_samples, labels=labels, seed=seed, guidance=guidance)
    samples = vqvae.decode(vqvae.from_token_grid(tokens))
    predicted, sample_features = classifier_predictions(classifier, samples)
    _, validation_features = classifier_predictions(classifier, validation_images[:num_samples])
    figures = {
        "num_samples": num_samples,
        "guidance": guidance,
        "frechet_distance": frechet_distance(sample_features, train_features),
        "frechet_distance_validation_floor": frechet_distance(validation_features, train_features),
        "label_agreement": None if labels is None else float(np.mean(predicted == labels)),
    }
    return figures, samples


def _requested_labels(num_samples, num_classes):
    """The classes of `num_samples` conditional samples: each class in turn, in equal blocks (± 1)."""
    return (np.arange(num_samples) * num_classes // num_samples).astype(np.int32)


def _first_of_each_class(samples, prior, per_class=8, classes=10):
    """Rows of `per_class` samples of each of the first `classes` classes (the first 80 if unconditional)."""
    if not prior.conditional:
        return samples[: per_class * classes]
    labels = _requested_labels(len(samples), prior.num_classes)
    rows = [samples[labels == label][:per_class] for label in range(min(classes, prior.num_classes))]
    return np.concatenate([row for row in rows if len(row)])


@locks_run()
def evaluate_run(
    run_path,
    source=None,
    samples=EVALUATE_DEFAULTS.samples,
    classifier_epochs=EVALUATE_DEFAULTS.classifier_epochs,
    seed=None,
    perceptual_network=None,
):
    """Measures a run and writes `RUN/evaluation.json` and the pictures in `RUN/evaluation/`.

    On the run's validation split (or every image of `source`): reconstruction PSNR, SSIM and the
    high-frequency ratio (`high_frequency_ratio`: 1 when the detail is kept, below 1 when blurred),
    codebook usage over the whole set (codes used, perplexity, dead codes, a histogram PNG; per
    level for residual VQ, plus the distinct d-tuples of codes the positions use, `tuple_usage`),
    and with a trained prior its bits per code and bits per image dimension
    (`vqgen.evaluation.likelihood`; a conditional prior is given the images' labels).
    With `samples` > 0 and a labelled dataset, a small classifier trained on the run's training split
    (cached as `RUN/evaluation/classifier.keras`) gives the rFD of the reconstructions
    (`reconstruction_frechet_distance`, else None), and with a prior also its validation accuracy,
    the agreement of conditional samples (classes in turn) with their requested class, the Fréchet
    distance of the samples to the training split in its feature space, and the same distance for
    as many real validation images as the floor. With a VGG16 weights file (`perceptual_network`,
    or the one the run recorded), the reconstructions' LPIPS (`mean_perceptual_distance`; else
    None). It writes into the run, so it holds the run's `RunLock` (refused while another process
    trains the run).

    Args:
        run_path: str. A run folder with a trained VQ-VAE (the prior's figures need a prior).
        source: str or None. Another image source (as `--data`); None: the run's validation split.
        samples: int >= 0. Samples for the classifier figures (0 skips them, rFD included).
        classifier_epochs: int >= 1. Training epochs of the classifier when it is not cached.
        seed: int or None. Sampling seed; None: the run's data seed.
        perceptual_network: str or None. VGG16 weights for LPIPS, as `--perceptual-network`; None:
            the run's, if it recorded one.

    Returns:
        dict, the content of `evaluation.json`.

    Raises:
        FileNotFoundError: the run or its VQ-VAE is missing.
        ValueError: bad arguments, a source whose images differ in shape from the run's, or VGG16
            weights that cannot be read.
        BlockingIOError: another process is writing the run.

    Example:
    >>> figures = evaluate_run("runs/digits", samples=500)  # doctest: +SKIP
    >>> print(format_table(figures))  # doctest: +SKIP
    """
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 0:
        raise ValueError(f"samples must be an int >= 0. Received: samples={samples!r}")
    run = RunFolder(run_path)
    config = run.read_config()
    vqvae = load_stage_model(run, "vqvae")
    prior = load_stage_model(run, "prior") if run.finished("prior") else None
    seed = config["data"]["seed"] if seed is None else seed
    network = perceptual_network or config.get("perceptual", {}).get("perceptual_network")
    features = vgg16_features(network) if network else None  # read first: a bad file fails fast
    train_set, validation_set = load_splits(config["data"])
    max_image_pixels = config["data"].get(
        "max_image_pixels", DATA_DEFAULTS.max_image_pixels
    )  # the run's limit
    evaluated = validation_set if source is None else load_images(source, max_image_pixels=max_image_pixels)
    if evaluated.image_shape != vqvae.image_shape:
        raise ValueError(
            f"{source} has images of shape {evaluated.image_shape} but the run's VQ-VAE takes "
            f"{vqvae.image_shape}; evaluate it on images of that size."
        )
    pictures = run.file(EVALUATION_FOLDER)
    images = _float_images(evaluated)
    result = {"data": source or f"{config['data']['source']} (validation split)", "num_images": len(images)}

    # Reconstruction
    result["reconstruction"], reconstructions = reconstruction_figures(vqvae, images)
    result["reconstruction"]["lpips"] = (
        None if features is None else mean_perceptual_distance(features, images, reconstructions)
    )
    save_comparison_grid(
        os.path.join(pictures, "reconstructions.png"), images[:32], reconstructions[:32], columns=8
    )

    # Codebook usage over the whole set
    codes = vqvae.encode(images)
    result["codebook"], counts = usage_figures(vqvae, codes)
    result["codebook_tuples"] = tuple_usage(codes, vqvae.num_embeddings) if codes.ndim == 4 else None
    for level, level_counts in enumerate(counts):
        name = "codebook_usage.png" if len(counts) == 1 else f"codebook_usage_level{level}.png"
        picture = usage_histogram_picture(level_counts)
        write_bytes_atomically(os.path.join(pictures, name), tf.io.encode_png(picture).numpy())

    # The prior's likelihood
    train_images = _float_images(train_set)
    labels = evaluated.labels
    result["likelihood"] = None
    if prior is not None and (not prior.conditional or labels is not None):
        sigma = decoder_scale(train_images, vqvae.reconstruct(train_images))
        result["likelihood"] = likelihood_figures(vqvae, prior, images, codes, reconstructions, labels, sigma)

    # A classifier of the training split: rFD, and the samples it judges
    result["samples"] = None
    num_classes = config["data"].get("num_classes")
    classifier = None
    if samples and num_classes and train_set.labels is not None:
        classifier = load_or_train_classifier(
            run, train_images, train_set.labels, num_classes, classifier_epochs, config["data"]["seed"]
        )
        result["reconstruction"]["frechet_distance"] = reconstruction_frechet_distance(
            classifier, images, reconstructions
        )
    if classifier is not None and prior is not None:
        validation_images = _float_images(validation_set)
        predicted, _ = classifier_predictions(classifier, validation_images)
        _, train_features = classifier_predictions(classifier, train_images)
        result["samples"], sampled = sample_figures(
            classifier, prior, vqvae, samples, seed, validation_images, train_features
        )
        result["samples"]["classifier_validation_accuracy"] = float(
            np.mean(predicted == validation_set.labels)
        )
        save_image_grid(
            os.path.join(pictures, "samples.png"), _first_of_each_class(sampled, prior), columns=8
        )

    write_text_atomically(run.file("evaluation.json"), json.dumps(result, indent=2, sort_keys=True) + "\n")
    return result


def format_table(result):
    """The figures of `evaluate_run` as an aligned two-column text table (counts left out)."""
    rows = [("data", result["data"]), ("images", result["num_images"])]
    rows += [
        ("PSNR (dB)", f"{result['reconstruction']['psnr_db']:.2f}"),
        ("SSIM", f"{result['reconstruction']['ssim']:.4f}"),
        ("high-frequency ratio", f"{result['reconstruction']['high_frequency_ratio']:.3f}"),
    ]
    reconstruction_fd = result["reconstruction"]["frechet_distance"]
    if reconstruction_fd is not None:
        rows += [("rFD (reconstructions)", f"{reconstruction_fd:.3f}")]
    lpips = result["reconstruction"].get("lpips")
    rows += [("LPIPS (VGG16, channels weighed 1)", LPIPS_ABSENT if lpips is None else f"{lpips:.4f}")]
    for level, usage in enumerate(result["codebook"]):
        prefix = "codebook" if len(result["codebook"]) == 1 else f"codebook level {level}"
        total = usage["codes_used"] + usage["dead_codes"]
        rows += [
            (f"{prefix}: codes used", f"{usage['codes_used']} / {total} ({usage['fraction_used']:.0%})"),
            (f"{prefix}: perplexity", f"{usage['perplexity']:.1f}"),
            (f"{prefix}: dead codes", usage["dead_codes"]),
        ]
    tuples = result.get("codebook_tuples")
    if tuples is not None:
        used = f"{tuples['tuples_used']} / {tuples['possible_tuples']} ({tuples['fraction_used']:.0%})"
        rows += [("code tuples: used", used), ("code tuples: perplexity", f"{tuples['perplexity']:.1f}")]
    likelihood = result["likelihood"]
    if likelihood is not None and likelihood["bits_per_code"] is None:  # MaskGIT: no likelihood
        rows += [
            ("prior bits per code", "n/a (MaskGIT defines no likelihood)"),
            ("prior masked bits per code", f"{likelihood['masked_bits_per_code']:.3f}"),
        ]
    elif likelihood is not None:
        rows += [
            ("prior bits per code", f"{likelihood['bits_per_code']:.3f}"),
            ("prior bits per image dim", f"{likelihood['prior_bits_per_dim']:.4f}"),
            ("bits per dim (bound)", f"{likelihood['bits_per_dim']:.3f}"),
        ]
    figures = result["samples"]
    if figures is not None:
        rows += [("classifier validation accuracy", f"{figures['classifier_validation_accuracy']:.3f}")]
        if figures["label_agreement"] is not None:
            rows += [
                ("sample guidance scale", f"{figures['guidance']:g}"),
                ("sample label agreement", f"{figures['label_agreement']:.3f}"),
            ]
        rows += [
            (f"Fréchet distance, {figures['num_samples']} samples", f"{figures['frechet_distance']:.3f}"),
            ("Fréchet distance, real validation", f"{figures['frechet_distance_validation_floor']:.3f}"),
        ]
    width = max(len(name) for name, _ in rows)
    text = io.StringIO()
    for name, value in rows:
        text.write(f"{name:<{width}}  {value}\n")
    return text.getvalue().rstrip("\n")
