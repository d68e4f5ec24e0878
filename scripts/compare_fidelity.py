"""Stage-1 fidelity on held-out images: the MSE baseline, + adversarial, + adversarial + factorized codes.

    python scripts/compare_fidelity.py                                    # Fashion-MNIST, 10 epochs per arm
    python scripts/compare_fidelity.py --data photos --epochs 30 --prior-epochs 0 --root runs/photos --reuse
    python scripts/compare_fidelity.py --quick                            # smoke run: digits, tiny models

Every arm is trained by `vqgen train` in its own run folder under `--root` (the same data, seed and
model; only the arm's options differ) and scored by `vqgen evaluate` on held-out images: Fashion-MNIST's
t10k split when `--data` is a folder of idx files (Debian's `dataset-fashion-mnist`), else the run's
validation split. All arms share one evaluation classifier, trained once on the real training split by
the first arm's `vqgen evaluate` and copied into the others, so their rFDs compare. Table: held-out
PSNR, SSIM, rFD (Fréchet distance of held-out images and their reconstructions in the classifier's
features; needs labels), the high-frequency ratio (1: detail kept), codes used on the held-out images,
and training images/s (epochs x images / wall seconds of `vqgen train`, start-up included). Then the
default prior (`vqgen train-prior`) on the baseline and on the arm with the lowest rFD, and the sample
Fréchet distance `vqgen evaluate` reports for each (images without labels have neither, so no prior is
trained for them; `--prior-epochs 0` skips the priors). The reconstructions of the first held-out
images by every arm go to `benchmarks/results/compare_fidelity_DATA.png` (top row: the originals).
Codes used at a large K: `compare_codebook_usage.py`.

Each finished arm leaves its figures in its folder. `--reuse` keeps the arms measured there with the
same settings instead of training them again, so a long comparison (the photos: three arms of 30
epochs at 128x128) can be run over several sittings; the output names the arms reused and when they
were measured.
"""

import argparse
import datetime
import json
import os
import shutil
import tempfile
import time

import numpy as np
from vqgen_commands import (
    FACTORIZED,
    FASHION_MNIST,
    TINY_MODEL,
    evaluate,
    held_out_source,
    train_arm,
    vqgen,
)

from vqgen.data import load_images, to_float_images
from vqgen.runs.image_grid import save_image_grid
from vqgen.runs.model_files import load_stage_model
from vqgen.runs.run_folder import RunFolder

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ADVERSARIAL = ["--adversarial-weight", "0.5", "--adversarial-start", "0"]
ARMS = {
    "MSE (baseline)": [],
    "+ adversarial": ADVERSARIAL,
    "+ adversarial + factorized codes": ADVERSARIAL + FACTORIZED,
}
CLASSIFIER = os.path.join("evaluation", "classifier.keras")
ARM_RECORD = "compare_fidelity_arm.json"
SHOWN = 8


def measured_arm(run, settings):
    """The record `record_arm` left in `run` when it measured an arm with the same `settings`, else None."""
    path = os.path.join(run, ARM_RECORD)
    if not os.path.isfile(path):
        return None
    with open(path) as file:
        record = json.load(file)
    return record if record["settings"] == settings else None


def record_arm(run, settings, evaluation, speed):
    """Writes and returns an arm's figures, its settings and when it was measured, for `--reuse`."""
    record = {
        "settings": settings,
        "evaluation": evaluation,
        "speed": speed,
        "measured": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }
    with open(os.path.join(run, ARM_RECORD), "w") as file:
        json.dump(record, file, indent=2)
    return record


def share_classifier(first_run, run):
    """Copies the first arm's evaluation classifier into `run`, so every arm is scored by the same one."""
    source = os.path.join(first_run, CLASSIFIER)
    if os.path.isfile(source) and source != os.path.join(run, CLASSIFIER):
        os.makedirs(os.path.dirname(os.path.join(run, CLASSIFIER)), exist_ok=True)
        shutil.copyfile(source, os.path.join(run, CLASSIFIER))


def reconstructions_picture(runs, held_out, data, path):
    """The first held-out images and every arm's reconstructions of them, one row each."""
    images = to_float_images(load_images(held_out or data).images[:SHOWN])
    rows = [images] + [load_stage_model(RunFolder(run), "vqvae").reconstruct(images) for run in runs]
    save_image_grid(path, np.concatenate(rows), columns=SHOWN)


def figure(value, digits):
    """`value` rounded, or "n/a" for a figure the arm has not (no labels: no rFD)."""
    return "n/a" if value is None else f"{value:.{digits}f}"


def main():
    """Trains every arm, evaluates it on held-out images and prints the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", default=FASHION_MNIST, help="training images (default: Fashion-MNIST idx files)"
    )
    parser.add_argument("--epochs", type=int, default=10, help="stage-1 epochs per arm")
    parser.add_argument(
        "--prior-epochs", type=int, default=None, help="prior epochs (default: vqgen's; 0: no prior)"
    )
    parser.add_argument("--samples", type=int, default=500, help="samples for the sample Fréchet distance")
    parser.add_argument("--root", default=None, help="folder for the runs (default: a temporary one)")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="keep the arms an earlier run under --root measured with the same settings",
    )
    parser.add_argument("--quick", action="store_true", help="digits, tiny models, one epoch: a smoke run")
    args = parser.parse_args()
    if args.quick:
        args.data, args.epochs, args.prior_epochs, args.samples = "digits", 1, 1, 50
    model_options = TINY_MODEL if args.quick else []
    root = args.root or tempfile.mkdtemp(prefix="vqgen-fidelity-")
    os.makedirs(root, exist_ok=True)
    held_out = held_out_source(args.data, root)
    load_before = os.getloadavg()
    start = time.perf_counter()

    rows, runs, reused = [], [], []
    for index, (name, options) in enumerate(ARMS.items()):
        run = os.path.join(root, f"arm{index}")
        settings = {"data": args.data, "epochs": args.epochs, "options": options, "model": model_options,
                    "held_out": held_out, "samples": args.samples}  # fmt: skip
        record = measured_arm(run, settings) if args.reuse else None
        if record is None:
            speed = train_arm(run, args.data, args.epochs, options, model_options)
            if runs:
                share_classifier(runs[0], run)
            record = record_arm(run, settings, evaluate(run, held_out, args.samples), speed)
        else:
            reused.append(f"{name} ({record['measured']})")
        rows.append((name, record["evaluation"], record["speed"]))
        runs.append(run)
        print(f"{name}: {json.dumps(record['evaluation']['reconstruction'])}", flush=True)

    def score(row):
        reconstruction = row[1]["reconstruction"]
        rfd = reconstruction["frechet_distance"]
        return rfd if rfd is not None else -reconstruction["high_frequency_ratio"]

    best = min(range(1, len(rows)), key=lambda index: score(rows[index]))
    prior_rows = []
    # The sample Fréchet distance needs labels; without them (no rFD either) the priors are not trained.
    labelled = rows[0][1]["reconstruction"]["frechet_distance"] is not None
    for index in sorted({0, best}) if labelled and args.prior_epochs != 0 else []:
        prior_options = [] if args.prior_epochs is None else ["--prior-epochs", str(args.prior_epochs)]
        vqgen("train-prior", "--run", runs[index], "--overwrite", "--quiet", *prior_options)
        samples = evaluate(runs[index], held_out, args.samples)["samples"]
        prior_rows.append((rows[index][0], samples))

    picture = os.path.join(
        REPOSITORY, "benchmarks", "results", f"compare_fidelity_{os.path.basename(args.data)}.png"
    )
    if not args.quick:
        reconstructions_picture(runs, held_out, args.data, picture)
    minutes = (time.perf_counter() - start) / 60
    load_after = os.getloadavg()

    print(
        f"\n{args.data}, {args.epochs} stage-1 epochs per arm; held out: {held_out or 'validation split'}; "
        f"{minutes:.1f} min; load average {load_before[0]:.1f} before, {load_after[0]:.1f} after on "
        f"{os.cpu_count()} cores\n"
    )
    print("| arm | options | PSNR (dB) | SSIM | rFD | high-frequency ratio | codes used | train images/s |")
    print("|---|---|---|---|---|---|---|---|")
    for name, result, speed in rows:
        reconstruction, codebook = result["reconstruction"], result["codebook"][0]
        print(
            f"| {name} | `{' '.join(ARMS[name]) or 'defaults'}` | {reconstruction['psnr_db']:.2f} "
            f"| {reconstruction['ssim']:.4f} | {figure(reconstruction['frechet_distance'], 2)} "
            f"| {reconstruction['high_frequency_ratio']:.3f} "
            f"| {codebook['codes_used']} / {len(codebook['counts'])} | {figure(speed, 0)} |"
        )
    if reused:
        print(f"\nArms measured by an earlier run with the same settings (--reuse): {'; '.join(reused)}")
    if prior_rows:
        print("\n| stage 1 under the default prior | sample Fréchet distance | floor (validation images) |")
        print("|---|---|---|")
        for name, samples in prior_rows:
            print(
                f"| {name} | {samples['frechet_distance']:.2f} "
                f"| {samples['frechet_distance_validation_floor']:.2f} |"
            )
    elif args.prior_epochs == 0:
        print("\nNo prior trained (--prior-epochs 0): no sample Fréchet distance.")
    else:
        print("\nNo labels: no rFD or sample Fréchet distance, so no prior was trained.")
    if not args.quick:
        print(
            f"\nReconstructions (top row: held-out originals; one row per arm): {os.path.basename(picture)}"
        )


if __name__ == "__main__":
    from results_file import run_and_record

    run_and_record(main, "compare_fidelity", variant_option="--data")
