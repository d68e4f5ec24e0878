"""Latency of `decode` and of sampling 16 grids in each export format, one process.

python scripts/benchmark_export.py                               # sampling: default-size priors
python scripts/benchmark_export.py --run runs/digits             # and the run's models' decode
python scripts/benchmark_export.py --run runs/digits --decode-repeats 50 --json export_latency.json
python scripts/benchmark_export.py --quick                       # smoke run: 7x7 only

Sampling (always): for a PixelCNN and a Transformer of the default settings (random weights,
class-conditional with label dropout, K=512) on 7x7 and 32x32 grids, exports a SavedModel and the
LiteRT and ONNX exports (temporary folders) and times sampling 16 grids (guidance 1): the
SavedModel's cached sampler (`sample`), the portable exports' cached step (`prior_start`,
`prior_step`, `prior_row` in `vqgen.noise_sampler.sample_raster`) and their full pass per position
(`prior_logits`). The full pass on 32x32 grids is timed on its first `--full-positions` positions
and extrapolated to all 1,024 (every position costs one identical pass), as the table says. It
checks that LiteRT and ONNX draw the same codes from the same Gumbel noise with the cached step
and (on 7x7) that they equal the SavedModel's `sample_from_noise`.

Decode (with `--run`): exports the run's VQ-VAE and prior, checks that every runtime decodes the
same 16 code grids within 1e-5 of the in-process `VQVAE.decode` and samples the same grids from
the same Gumbel noise, then times each. Every figure is the median of `--repeats` calls after one
warm-up call. Prints Markdown tables and the load average.

MaskGIT (always, `maskgit_table`): its noise-driven decoding of 16 grids at the same grid sizes, a
class-conditional MaskGIT of the default architecture with untrained weights and K = 256 in the
default 8 steps, through the SavedModel's `sample_from_noise(_guided)` and the NumPy loop
(`vqgen.noise_sampler.maskgit_sample_with_noise`) around LiteRT's and ONNX Runtime's
`prior_logits`, with guidance 1 and 2 (a doubled batch), each checked to give the SavedModel's codes.
"""

import argparse
import functools
import json
import os
import tempfile
import time

import numpy as np
import tensorflow as tf

import prior
import vqgen
from prior.settings import MASKGIT_STEPS
from vqgen.export import export_saved_model
from vqgen.noise_sampler import FullPassStep, gumbel_noise, maskgit_noise
from vqgen.portable_export import export_portable, load_portable
from vqgen.runs.model_files import load_stage_model
from vqgen.runs.run_folder import RunFolder

GRIDS = 16
SAMPLING_GRID_SHAPES = ((7, 7), (32, 32))
NUM_EMBEDDINGS = 512
NUM_CLASSES = 10
CHECKED_POSITIONS = 64  # grids of at most this many positions are checked against `sample_from_noise`


def median_seconds(function, repeats):
    function()  # warm-up (tracing, delegate set-up)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def random_weights_models(kind, grid_shape):
    """A default-size `kind` prior ("PixelCNN" or "Transformer", class-conditional with label dropout)
    and a small VQ-VAE with the same code grid, both with random weights (timings need no training)."""
    rng = np.random.default_rng(0)
    rows, cols = grid_shape
    vqvae = vqgen.VQVAE(
        input_shape=(4 * rows, 4 * cols, 1),
        num_embeddings=NUM_EMBEDDINGS,
        embedding_dim=8,
        downsample=4,
        hidden_channels=16,
        residual_channels=8,
        num_residual_blocks=1,
    )
    model = getattr(prior, kind)(NUM_EMBEDDINGS, grid_shape, num_classes=NUM_CLASSES, label_dropout=0.1)
    for weights_of in (vqvae, model):
        weights_of.set_weights(
            [rng.normal(scale=0.1, size=w.shape).astype("float32") for w in weights_of.get_weights()]
        )
    return vqvae, model


def full_pass_seconds(loaded, gumbel, labels, positions_timed, repeats):
    """Seconds of the full-pass sampler (one `prior_logits` call per position) for all positions,
    timed on the first `positions_timed` positions and scaled to all of them."""
    rows, cols = gumbel.shape[1:3]
    step = FullPassStep(loaded.prior_logits, (rows, cols))
    previous = np.zeros(len(gumbel), np.int32)

    def some_positions():
        cache = step.initial_cache(len(gumbel))
        for index in range(positions_timed):
            _, cache = step.call_with_cache(previous, cache, index, labels)

    return median_seconds(some_positions, repeats) * rows * cols / positions_timed


def sampling_rows(kind, grid_shape, repeats, full_positions):
    """The sampling table's rows for one prior and grid: `(sampler, seconds, note)`, and the checks."""
    vqvae, model = random_weights_models(kind, grid_shape)
    rows, cols = grid_shape
    labels = (np.arange(GRIDS) % NUM_CLASSES).astype(np.int32)
    gumbel = gumbel_noise(GRIDS, grid_shape, NUM_EMBEDDINGS, seed=0)
    with tempfile.TemporaryDirectory() as folder:
        saved = tf.saved_model.load(export_saved_model(os.path.join(folder, "saved_model"), vqvae, model))
        portable = {
            name: load_portable(export_portable(os.path.join(folder, name), vqvae, model, format=name))
            for name in ("litert", "onnx")
        }
        seeded = {
            "num_samples": tf.constant(GRIDS),
            "temperature": tf.constant(1.0),
            "seed": tf.constant(0, tf.int64),
            "labels": tf.constant(labels),
        }
        saved_seconds = median_seconds(lambda: saved.signatures["sample"](**seeded)["codes"].numpy(), repeats)
        cached = {name: loaded.sample(gumbel, 1.0, labels) for name, loaded in portable.items()}
        checks = {
            "LiteRT and ONNX cached: same codes": bool(np.array_equal(cached["litert"], cached["onnx"]))
        }
        if rows * cols <= CHECKED_POSITIONS:  # the SavedModel's noise sampler: a full pass per position
            noise = {
                "gumbel": tf.constant(gumbel),
                "temperature": tf.constant(1.0),
                "labels": tf.constant(labels),
            }
            from_noise = saved.signatures["sample_from_noise"](**noise)["codes"].numpy()
            checks["cached = SavedModel sample_from_noise"] = {
                name: bool(np.array_equal(codes, from_noise)) for name, codes in cached.items()
            }
        positions_timed = min(rows * cols, full_positions)
        note = (
            "" if positions_timed == rows * cols else f"{positions_timed} of {rows * cols} positions, scaled"
        )
        table = [("SavedModel `sample` (cached, XLA)", saved_seconds, "")]
        for name, title in (("litert", "LiteRT"), ("onnx", "ONNX Runtime")):
            loaded = portable[name]
            table.append(
                (
                    f"{title} cached step",
                    median_seconds(lambda loaded=loaded: loaded.sample(gumbel, 1.0, labels), repeats),
                    "",
                )
            )
            table.append(
                (
                    f"{title} full pass",
                    full_pass_seconds(loaded, gumbel, labels, positions_timed, repeats),
                    note,
                )
            )
    return table, checks


def sampling_table(grid_shapes, repeats, full_positions):
    """Prints the sampling table (seconds for 16 grids, ratio to the SavedModel) and returns its rows."""
    print(
        f"Sampling {GRIDS} grids (K={NUM_EMBEDDINGS}, {NUM_CLASSES} classes, guidance 1), default-size "
        f"priors with random weights; median of {repeats} after a warm-up.\n"
    )
    print("| prior | grid | sampler | seconds | × SavedModel cached | note |")
    print("|---|---|---|---|---|---|")
    records = []
    for grid_shape in grid_shapes:
        for kind in ("PixelCNN", "Transformer"):
            table, checks = sampling_rows(kind, grid_shape, repeats, full_positions)
            reference = table[0][1]
            grid = f"{grid_shape[0]}x{grid_shape[1]}"
            for sampler, seconds, note in table:
                print(f"| {kind} | {grid} | {sampler} | {seconds:.3f} | {seconds / reference:.2f} | {note} |")
                records.append(
                    {"prior": kind, "grid": grid, "sampler": sampler, "seconds": seconds, "note": note}
                )
            records.append({"prior": kind, "grid": grid, "checks": checks})
            print(f"| {kind} | {grid} | checks | {checks} | | |")
    print()
    return records


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", help="run folder with a trained VQ-VAE and prior: also time its decode")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls of each sampler")
    parser.add_argument("--decode-repeats", type=int, default=30, help="timed calls of each decode")
    parser.add_argument(
        "--full-positions",
        type=int,
        default=64,
        help="positions of the full-pass sampler timed on grids larger than this (then scaled)",
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: 7x7 grids only, one repeat")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args()
    grid_shapes = SAMPLING_GRID_SHAPES[:1] if args.quick else SAMPLING_GRID_SHAPES
    repeats = 1 if args.quick else args.repeats
    figures = {"sampling": sampling_table(grid_shapes, repeats, args.full_positions)}
    figures["maskgit"] = maskgit_table(grid_shapes, repeats)
    if args.run:
        figures["decode"] = decode_table(args.run, args.decode_repeats, repeats)
    load = os.getloadavg()
    print(f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as stream:
            json.dump({"load_average": load, **figures}, stream, indent=2)


def decode_table(run_folder, repeats, sampling_repeats):
    """Prints the decode table of a run's models (and their noise sampling) and returns its rows."""
    run = RunFolder(run_folder)
    vqvae = load_stage_model(run, "vqvae")
    prior_model = load_stage_model(run, "prior")
    rng = np.random.default_rng(0)
    codes = rng.integers(0, vqvae.num_embeddings, size=(GRIDS, *vqvae.code_shape)).astype(np.int32)
    labels = (
        (np.arange(GRIDS) % prior_model.num_classes).astype(np.int32) if prior_model.conditional else None
    )
    gumbel = gumbel_noise(GRIDS, prior_model.grid_shape, prior_model.num_embeddings, seed=0)
    reference = vqvae.decode(codes)

    with tempfile.TemporaryDirectory() as folder:
        saved = tf.saved_model.load(
            export_saved_model(os.path.join(folder, "saved_model"), vqvae, prior_model)
        )
        portable = {
            name: load_portable(export_portable(os.path.join(folder, name), vqvae, prior_model, format=name))
            for name in ("litert", "onnx")
        }
        noise_inputs = {"gumbel": tf.constant(gumbel), "temperature": tf.constant(1.0)}
        if labels is not None:
            noise_inputs["labels"] = tf.constant(labels)
        saved_codes = saved.signatures["sample_from_noise"](**noise_inputs)["codes"].numpy()
        decoders = {
            "in-process `VQVAE.decode`": lambda: vqvae.decode(codes),
            "SavedModel `decode`": lambda: saved.signatures["decode"](codes=tf.constant(codes))[
                "images"
            ].numpy(),
            "LiteRT `decode.tflite`": lambda: portable["litert"].decode(codes),
            "ONNX Runtime `decode.onnx`": lambda: portable["onnx"].decode(codes),
        }
        samplers = {
            "in-process `VQVAE.decode`": None,
            "SavedModel `decode`": lambda: saved.signatures["sample_from_noise"](**noise_inputs)[
                "codes"
            ].numpy(),
            "LiteRT `decode.tflite`": lambda: portable["litert"].sample(gumbel, 1.0, labels),
            "ONNX Runtime `decode.onnx`": lambda: portable["onnx"].sample(gumbel, 1.0, labels),
        }
        rows = []
        for name, decode in decoders.items():
            error = float(np.max(np.abs(decode() - reference)))
            sampler = samplers[name]
            same = None if sampler is None else bool(np.array_equal(sampler(), saved_codes))
            rows.append(
                {
                    "runtime": name,
                    "decode_seconds": median_seconds(decode, repeats),
                    "decode_max_abs_difference": error,
                    "noise_sampling_seconds": None
                    if sampler is None
                    else median_seconds(sampler, sampling_repeats),
                    "same_codes_as_saved_model": same,
                }
            )
    print(
        f"Decode of {GRIDS} grids {vqvae.code_shape} of {run_folder}; sampling {GRIDS} grids from the same "
        f"Gumbel noise (SavedModel: `sample_from_noise`, a full pass per position); median of {repeats} "
        f"decodes, {sampling_repeats} samplings.\n"
    )
    print(
        "| runtime | decode 16 grids (ms) | max abs diff vs in-process | noise sampling 16 grids (s) "
        "| same codes |"
    )
    print("|---|---|---|---|---|")
    for row in rows:
        sampling = "—" if row["noise_sampling_seconds"] is None else f"{row['noise_sampling_seconds']:.3f}"
        same = "—" if row["same_codes_as_saved_model"] is None else str(row["same_codes_as_saved_model"])
        print(
            f"| {row['runtime']} | {1000 * row['decode_seconds']:.2f} "
            f"| {row['decode_max_abs_difference']:.1e} | {sampling} | {same} |"
        )
    print()
    return rows


def maskgit_runtimes(saved, portable, noise, labels, guidance):
    """`{runtime: function}`: each decodes `noise` (a `maskgit_noise` dict) with `guidance` to codes."""
    inputs = {name: tf.constant(value) for name, value in noise.items()}
    inputs.update(temperature=tf.constant(1.0), labels=tf.constant(labels))
    if guidance == 1:  # the signature without a guidance input decodes with guidance 1
        signature = saved.signatures["sample_from_noise"]
    else:
        signature = saved.signatures["sample_from_noise_guided"]
        inputs["guidance"] = tf.constant(guidance)
    runtimes = {"SavedModel `sample_from_noise`": lambda: signature(**inputs)["codes"].numpy()}
    for name, title in (("litert", "LiteRT"), ("onnx", "ONNX Runtime")):
        runtimes[f"{title} + NumPy loop"] = functools.partial(
            portable[name].sample, **noise, labels=labels, guidance=guidance
        )
    return runtimes


def maskgit_table(grid_shapes, repeats, num_embeddings=256, num_classes=10):
    """Times MaskGIT's noise-driven decoding of `GRIDS` grids per runtime and prints a Markdown table.

    For each grid shape: a class-conditional MaskGIT (default architecture, label dropout, untrained
    weights) and a tiny VQ-VAE of the matching token grid, exported as a SavedModel and for LiteRT and
    ONNX Runtime (temporary folders); one noise tensor (`maskgit_noise`, `MASKGIT_STEPS` steps) is
    decoded by each with guidance 1 and 2, checked to give the SavedModel's codes, and timed (median
    of `repeats` calls after a warm-up call). The SavedModel's time includes decoding the images of a
    VQ-VAE with 8 hidden channels.
    """
    rows = []
    for grid in grid_shapes:
        vqvae = vqgen.VQVAE(
            input_shape=(4 * grid[0], 4 * grid[1], 1),
            num_embeddings=num_embeddings,
            embedding_dim=4,
            hidden_channels=8,
            residual_channels=4,
            num_residual_blocks=1,
        )
        maskgit = prior.MaskGIT(num_embeddings, grid, num_classes=num_classes, label_dropout=0.1)
        steps = maskgit.check_steps(None, "cosine")
        noise = maskgit_noise(GRIDS, steps, grid, num_embeddings, seed=0)
        labels = (np.arange(GRIDS) % num_classes).astype(np.int32)
        with tempfile.TemporaryDirectory() as folder:
            saved = tf.saved_model.load(
                export_saved_model(os.path.join(folder, "saved_model"), vqvae, maskgit)
            )
            portable = {
                name: load_portable(export_portable(os.path.join(folder, name), vqvae, maskgit, format=name))
                for name in ("litert", "onnx")
            }
            for guidance in (1.0, 2.0):
                runtimes = maskgit_runtimes(saved, portable, noise, labels, guidance)
                saved_codes = runtimes["SavedModel `sample_from_noise`"]()
                for name, sampler in runtimes.items():
                    rows.append(
                        {
                            "grid": f"{grid[0]}x{grid[1]}",
                            "guidance": guidance,
                            "runtime": name,
                            "seconds": median_seconds(sampler, repeats),
                            "same_codes_as_saved_model": bool(np.array_equal(sampler(), saved_codes)),
                        }
                    )
    load = os.getloadavg()
    print(
        f"MaskGIT's noise-driven decoding of {GRIDS} grids, K = {num_embeddings}, {MASKGIT_STEPS} steps (one "
        f"logits pass per step, on twice the grids with guidance), median of {repeats}; load average "
        f"{load[0]:.1f} {load[1]:.1f} {load[2]:.1f}\n"
    )
    print("| grid | guidance | runtime | 16 grids (s) | same codes as SavedModel |")
    print("|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['grid']} | {row['guidance']:g} | {row['runtime']} | {row['seconds']:.2f} "
            f"| {row['same_codes_as_saved_model']} |"
        )
    print()
    return rows


if __name__ == "__main__":
    from results_file import run_and_record

    run_and_record(main, "benchmark_export")
