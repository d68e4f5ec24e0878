"""Classifier-free guidance side by side: each prior, trained with label dropout on one stage-1 model's
codes, sampled at several guidance scales and scored by the evaluation classifier; picks each prior's scale.

    vqgen train --run runs/guidance                                     # one stage-1 model (digits)
    vqgen train --run runs/fashion --data /usr/share/datasets/fashion-mnist --epochs 3
    python scripts/compare_guidance.py --run runs/guidance runs/fashion --epochs 6 1
    python scripts/compare_guidance.py --run runs/guidance --epochs 1 --samples 100 --priors pixelcnn

For every run and every prior of the workflow (`prior.registry.PRIORS`: the PixelCNN, the
Transformer and MaskGIT), a class-conditional prior with its default architecture is trained by
`train_prior` (`--label-dropout`, `--epochs`) in a copy of the run's stage 1 under
RUN/compare_guidance/KIND. Each is sampled `--samples` times (the classes in equal blocks, one seed)
at every `--guidance` scale, and the decoded samples are scored as `vqgen evaluate` scores them: the
agreement of the run's evaluation classifier (trained once on the training split and cached in
RUN/evaluation/) with the requested label, and the Fréchet distance between the samples' and the
training images' classifier features (lower is closer; the same distance for the run's real validation
images is printed as the floor).

The last table picks each prior's scale: the one with the lowest Fréchet distance relative to
unguided sampling (scale 1, which `--guidance` must include), averaged over the runs; the smaller
scale on a tie. Guidance raises agreement at every scale, and past the pick it also moves the samples
away from the data (a higher distance), so the pick is the best match to the data among the scales
that add agreement. `GUIDANCE_BY_PRIOR` in vqgen/settings.py holds these picks, and a test checks that
it equals this file's last table. The first 8 samples of each class of the first run go to
docs/guidance_KIND_sSCALE.png. The load average is printed: other jobs share the CPU.
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


def measure_run(run_path, kinds, scales, epochs, args, pictures):
    """Trains each prior kind on one run's codes and scores its samples at every scale.

    Returns:
        `(floor, rows)`: `floor` the (agreement, Fréchet distance) of the run's real validation images;
        `rows` one `(kind, scale, agreement, distance, sample_seconds, train_seconds, prior_results)` per
        prior and scale.
    """
    run = RunFolder(run_path)
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
        folder = stage1_copy(run, kind)
        start = time.perf_counter()
        model = train_prior(
            folder,
            conditional=True,
            kind=kind,
            epochs=epochs,
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
            if pictures:
                shown = np.concatenate(
                    [images[labels == label][:PER_CLASS_SHOWN] for label in range(num_classes)]
                )
                save_image_grid(
                    os.path.join(args.docs, f"guidance_{kind}_s{scale:g}.png"),
                    shown,
                    columns=PER_CLASS_SHOWN,
                )
            print(
                f"{run_path} {kind} guidance {scale:g}: agreement {agreement:.3f}, Fréchet {distance:.2f}",
                flush=True,
            )
    return floor, rows


def pick_scales(rows_by_run, kinds, scales):
    """Each prior's scale with the lowest Fréchet distance relative to scale 1, averaged over the runs.

    Args:
        rows_by_run: list (one per run) of `measure_run` rows.
        kinds: the prior kinds measured.
        scales: the scales measured, 1 among them.

    Returns:
        dict kind -> `(scale, mean relative distance, mean agreement)` of the pick; ties go to the
        smaller scale.
    """
    picks = {}
    for kind in kinds:
        candidates = []
        for scale in sorted(scales):
            relative, agreement = [], []
            for rows in rows_by_run:
                by_scale = {row[1]: row for row in rows if row[0] == kind}
                relative.append(by_scale[scale][3] / by_scale[1.0][3])
                agreement.append(by_scale[scale][2])
            candidates.append((float(np.mean(relative)), scale, float(np.mean(agreement))))
        distance, scale, agreement = min(candidates, key=lambda candidate: candidate[:2])
        picks[kind] = (scale, distance, agreement)
    return picks


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--run", nargs="+", required=True, help="run folders, each with a trained stage 1 on labelled data"
    )
    parser.add_argument(
        "--epochs",
        type=int,
        nargs="+",
        default=[6],
        help="training epochs of each prior: one value, or one per run",
    )
    parser.add_argument("--label-dropout", type=float, default=GUIDANCE_DEFAULTS.label_dropout)
    parser.add_argument("--samples", type=int, default=EVALUATE_DEFAULTS.samples, help="samples per scale")
    parser.add_argument(
        "--guidance", default="1,1.5,2,3", help="comma-separated guidance scales, 1 among them"
    )
    parser.add_argument("--priors", default=",".join(PRIORS), help="comma-separated prior kinds")
    parser.add_argument("--docs", default="docs", help="folder for the first run's sample grids")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed")
    args = parser.parse_args()
    scales = [float(scale) for scale in args.guidance.split(",")]
    kinds = args.priors.split(",")
    unknown = [kind for kind in kinds if kind not in PRIORS]
    if unknown:
        parser.error(f"--priors {','.join(unknown)}: not a prior (known: {', '.join(PRIORS)})")
    if 1.0 not in scales:
        parser.error("--guidance must include 1 (unguided sampling, the reference of the pick)")
    if len(args.epochs) not in (1, len(args.run)):
        parser.error(f"--epochs takes one value or one per run ({len(args.run)}); got {len(args.epochs)}")
    epochs = args.epochs * len(args.run) if len(args.epochs) == 1 else args.epochs
    print(f"load average at start: {os.getloadavg()}")
    started = time.perf_counter()

    measured = [
        measure_run(run, kinds, scales, run_epochs, args, pictures=index == 0)
        for index, (run, run_epochs) in enumerate(zip(args.run, epochs))
    ]

    print()
    print(
        f"{args.samples} samples per row, seed {args.seed}; priors trained with label dropout "
        f"{args.label_dropout}"
    )
    for run, run_epochs, (floor, rows) in zip(args.run, epochs, measured):
        print()
        print(
            f"{run}: priors trained {run_epochs} epochs; real validation images: agreement {floor[0]:.3f}, "
            f"Fréchet {floor[1]:.2f}"
        )
        print()
        print(
            "| prior | guidance | label agreement | Fréchet distance | sampling s | training s "
            "| val. bits/code |"
        )
        print("|---|---|---|---|---|---|---|")
        for kind, scale, agreement, distance, sample_seconds, train_seconds, results in rows:
            bits = results.get("validation_bits_per_code")
            bits = "n/a" if bits is None else f"{bits:.3f}"
            print(
                f"| {kind} | {scale:g} | {agreement:.3f} | {distance:.2f} | {sample_seconds:.1f} "
                f"| {train_seconds:.0f} | {bits} |"
            )
    print()
    print(f"Picked scales (lowest Fréchet distance relative to guidance 1, mean over {len(args.run)} runs):")
    print()
    print("| prior | picked guidance | relative Fréchet distance | label agreement |")
    print("|---|---|---|---|")
    for kind, (scale, distance, agreement) in pick_scales(
        [rows for _, rows in measured], kinds, scales
    ).items():
        print(f"| {kind} | {scale:g} | {distance:.3f} | {agreement:.3f} |")
    print()
    print(f"total {time.perf_counter() - started:.0f} s; load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    from results_file import run_and_record

    run_and_record(main, "compare_guidance")
