"""Latency of `decode` (and of noise-driven sampling) for 16 grids in each export format, one process.

python scripts/benchmark_export.py --run runs/digits             # the run's models
python scripts/benchmark_export.py --run runs/digits --repeats 50 --json export_latency.json

Exports the run's VQ-VAE and prior as a SavedModel, for LiteRT and for ONNX Runtime (temporary
folders), checks that every runtime decodes the same 16 code grids within 1e-5 of the in-process
`VQVAE.decode` and samples the same grids from the same Gumbel noise, then times each: the median
of `--repeats` calls after one warm-up call. Prints a Markdown table and the load average.
"""

import argparse
import json
import os
import tempfile
import time

import numpy as np
import tensorflow as tf

from vqgen.export import export_saved_model
from vqgen.noise_sampler import gumbel_noise
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
    parser.add_argument("--run", required=True, help="run folder with a trained VQ-VAE and prior")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args()
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


if __name__ == "__main__":
    from results_file import run_and_record

    run_and_record(main, "benchmark_export")
