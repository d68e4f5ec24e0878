"""Latency of `decode` (and of noise-driven sampling) for 16 grids in each export format, one process.

python scripts/benchmark_export.py --run runs/digits             # the run's models
python scripts/benchmark_export.py --run runs/digits --repeats 50 --json export_latency.json
python scripts/benchmark_export.py --maskgit                     # MaskGIT's decoding only

Exports the run's VQ-VAE and prior as a SavedModel, for LiteRT and for ONNX Runtime (temporary
folders), checks that every runtime decodes the same 16 code grids within 1e-5 of the in-process
`VQVAE.decode` and samples the same grids from the same Gumbel noise, then times each: the median
of `--repeats` calls after one warm-up call. Prints a Markdown table and the load average.

With `--maskgit`, also (or, without `--run`, only) MaskGIT's noise-driven decoding of 16 grids at
7x7 and 32x32 (`maskgit_table`): a class-conditional MaskGIT of the default architecture with
untrained weights (the time does not depend on them) and K = 256, in the default 8 steps, through
the SavedModel's `sample_from_noise(_guided)` and the NumPy loop (`vqgen.noise_sampler`) around
LiteRT's and ONNX Runtime's `prior_logits`, with guidance 1 and 2 (a doubled batch).
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
from vqgen.noise_sampler import gumbel_noise, maskgit_noise
from vqgen.portable_export import export_portable, load_portable
from vqgen.runs.model_files import load_stage_model
from vqgen.runs.run_folder import RunFolder

GRIDS = 16


def median_seconds(function, repeats):
    function()  # warm-up (tracing, delegate set-up)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", help="run folder with a trained VQ-VAE and prior")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--json", help="also write the figures to this JSON file")
    parser.add_argument(
        "--maskgit", action="store_true", help="time MaskGIT's noise-driven decoding at 7x7 and 32x32"
    )
    args = parser.parse_args()
    if args.run is None and not args.maskgit:
        parser.error("give --run RUN, --maskgit or both")
    if args.maskgit:
        maskgit_table()
    if args.run is None:
        return
    run = RunFolder(args.run)
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
                    "decode_seconds": median_seconds(decode, args.repeats),
                    "decode_max_abs_difference": error,
                    "noise_sampling_seconds": None if sampler is None else median_seconds(sampler, 3),
                    "same_codes_as_saved_model": same,
                }
            )
    load = os.getloadavg()
    print(
        f"decode of {GRIDS} grids {vqvae.code_shape}, median of {args.repeats}; sampling {GRIDS} grids "
        f"from the same Gumbel noise, median of 3; load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}\n"
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
    if args.json:
        with open(args.json, "w", encoding="utf-8") as stream:
            json.dump({"load_average": load, "rows": rows}, stream, indent=2)


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


def maskgit_table(grid_shapes=((7, 7), (32, 32)), num_embeddings=256, num_classes=10, repeats=3):
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


if __name__ == "__main__":
    from results_file import run_and_record

    run_and_record(main, "benchmark_export")
