"""Classifier-free guidance side by side: each prior, trained with label dropout on one stage-1 model's
codes, sampled at several guidance scales and scored by the evaluation classifier.

    vqgen train --run runs/guidance                                     # one stage-1 model (digits)
    python scripts/compare_guidance.py --run runs/guidance --epochs 6
    python scripts/compare_guidance.py --run runs/guidance --epochs 1 --samples 100 --priors pixelcnn

For every prior of the workflow (`prior.registry.PRIORS`: the PixelCNN, the
Transformer and, where it exists, MaskGIT), a class-conditional prior with its default architecture
is trained by `train_prior` (`--label-dropout`, `--epochs`) in a copy of the run's stage 1 under
RUN/compare_guidance/KIND. Each is sampled `--samples` times (the classes in equal blocks, one seed)
at every `--guidance` scale, and the decoded samples are scored as `vqgen evaluate` scores them: the
agreement of the run's evaluation classifier (trained once and cached in RUN/evaluation/) with the
requested label, and the Fréchet distance between the samples' and the training images' classifier
features (lower is closer; the same distance for real validation images is printed as the floor).
The first 8 samples of each class go to docs/guidance_KIND_sSCALE.png. The load average is printed:
other jobs share the CPU.
"""

import argparse
import os
import shutil
import time

import numpy as np

from prior.registry import PRIORS
from vqgen.data import to_float_images
from vqgen.evaluation import classifier_predictions, frechet_distance
from vqgen.runs.evaluate_run import load_or_train_classifier
from vqgen.runs.image_grid import save_image_grid
from vqgen.runs.model_files import load_stage_model
from vqgen.runs.run_folder import RunFolder
from vqgen.runs.sample_images import labels_by_class
from vqgen.runs.train_prior import train_prior
from vqgen.runs.train_vqvae import load_splits
from vqgen.settings import EVALUATE_DEFAULTS, GUIDANCE_DEFAULTS

PER_CLASS_SHOWN = 8


def stage1_copy(run, kind):
    """A run folder holding a copy of `run`'s stage 1 (config, VQ-VAE, coded dataset) for one prior."""
    folder = os.path.join(run.path, "compare_guidance", kind)
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    for name in ("config.json", "vqvae.keras", "codes"):
        source = os.path.join(run.path, name)
        if os.path.isdir(source):
            shutil.copytree(source, os.path.join(folder, name))
        elif os.path.isfile(source):
            shutil.copy2(source, os.path.join(folder, name))
    return folder


def score(classifier, images, labels, train_features):
    """Label agreement and Fréchet distance of `images` in the classifier's feature space."""
    predicted, features = classifier_predictions(classifier, images)
    return float(np.mean(predicted == labels)), frechet_distance(features, train_features)


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--run", required=True, help="a run folder with a trained stage 1 on labelled data")
    parser.add_argument("--epochs", type=int, default=6, help="training epochs of each prior")
    parser.add_argument("--label-dropout", type=float, default=GUIDANCE_DEFAULTS.label_dropout)
    parser.add_argument("--samples", type=int, default=EVALUATE_DEFAULTS.samples, help="samples per scale")
    parser.add_argument("--guidance", default="1,2,3", help="comma-separated guidance scales")
    parser.add_argument("--priors", default=",".join(PRIORS), help="comma-separated prior kinds")
    parser.add_argument("--docs", default="docs", help="folder for the sample grids")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed")
    args = parser.parse_args()
    scales = [float(scale) for scale in args.guidance.split(",")]
    kinds = args.priors.split(",")
    print(f"load average at start: {os.getloadavg()}")
    started = time.perf_counter()

    # The evaluation classifier of the run and the training images' features
    run = RunFolder(args.run)
    config = run.read_config()
    vqvae = load_stage_model(run, "vqvae")
    train_set, validation_set = load_splits(config["data"])
    num_classes = config["data"]["num_classes"]
    train_images = to_float_images(train_set.images)
    classifier = load_or_train_classifier(
        run,
        train_images,
        train_set.labels,
        num_classes,
        EVALUATE_DEFAULTS.classifier_epochs,
        config["data"]["seed"],
    )
    _, train_features = classifier_predictions(classifier, train_images)
    validation_images = to_float_images(validation_set.images)[: args.samples]
    floor = score(classifier, validation_images, validation_set.labels[: args.samples], train_features)
    labels, _ = labels_by_class(args.samples, num_classes)
    labels = np.asarray(labels, np.int32)

    rows = []
    for kind in kinds:
        if kind not in PRIORS:
            print(f"{kind}: not a prior of this tree (known: {', '.join(PRIORS)}); left out")
            continue
        folder = stage1_copy(run, kind)
        start = time.perf_counter()
        model = train_prior(
            folder,
            conditional=True,
            kind=kind,
            epochs=args.epochs,
            label_dropout=args.label_dropout,
            verbose=0,
        )
        train_seconds = time.perf_counter() - start
        results = RunFolder(folder).read_config().get("prior_results", {})
        for scale in scales:
            start = time.perf_counter()
            tokens = model.sample(args.samples, labels=labels, seed=args.seed, guidance=scale)
            sample_seconds = time.perf_counter() - start
            images = vqvae.decode(vqvae.from_token_grid(tokens))
            agreement, distance = score(classifier, images, labels, train_features)
            rows.append((kind, scale, agreement, distance, sample_seconds, train_seconds, results))
            shown = np.concatenate(
                [images[labels == label][:PER_CLASS_SHOWN] for label in range(num_classes)]
            )
            save_image_grid(
                os.path.join(args.docs, f"guidance_{kind}_s{scale:g}.png"), shown, columns=PER_CLASS_SHOWN
            )
            print(f"{kind} guidance {scale:g}: agreement {agreement:.3f}, Fréchet {distance:.2f}", flush=True)

    print()
    print(
        f"{args.samples} samples per row, seed {args.seed}; priors trained {args.epochs} epochs with label "
        f"dropout {args.label_dropout}; real validation images: agreement {floor[0]:.3f}, "
        f"Fréchet {floor[1]:.2f}"
    )
    print(
        "| prior | guidance | label agreement | Fréchet distance | sampling s | training s | val. bits/code |"
    )
    print("|---|---|---|---|---|---|---|")
    for kind, scale, agreement, distance, sample_seconds, train_seconds, results in rows:
        bits = results.get("validation_bits_per_code")
        bits = "n/a" if bits is None else f"{bits:.3f}"
        print(
            f"| {kind} | {scale:g} | {agreement:.3f} | {distance:.2f} | {sample_seconds:.1f} "
            f"| {train_seconds:.0f} | {bits} |"
        )
    print(f"total {time.perf_counter() - started:.0f} s; load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    from results_file import run_and_record

    run_and_record(main, "compare_guidance")
