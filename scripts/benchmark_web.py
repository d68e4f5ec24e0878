"""The web export's time per sample in headless Chromium (onnxruntime-web, WebAssembly), one process.

python scripts/benchmark_web.py --run runs/digits                 # the run's models, 16 grids
python scripts/benchmark_web.py --run runs/digits --large-grid 32 # + a 32x32 prior, random weights

Exports the run's VQ-VAE and prior with `vqgen export --format web` (a temporary folder), opens the
page in the system's Chromium (vqgen.web_browser), checks that for one Gumbel noise tensor the page
samples the codes of `vqgen.noise_sampler` over ONNX Runtime in Python, then times 16 grids (labels
0, 1, 2, ... for a conditional prior; guidance 1, temperature 1; the noise drawn in the page): the
median of `--repeats` calls after one warm-up call, beside the same sampling in Python's ONNX Runtime.
The page samples a PixelCNN or Transformer over the cached step and a MaskGIT in its default steps.
With `--large-grid N` it also exports the run's prior settings on an N x N grid with random weights
(a VQ-VAE with the run's settings on images N * downsample pixels wide) and times the page sampling
16 grids of it the same way.
"""

import argparse
import os
import tempfile
import time

import numpy as np

from vqgen.noise_sampler import gumbel_noise
from vqgen.portable_export import load_portable
from vqgen.runs.model_files import load_stage_model
from vqgen.runs.run_folder import RunFolder
from vqgen.web_browser import open_page
from vqgen.web_export import ONNXRUNTIME_WEB_VERSION, export_web

GRIDS = 16


def page_seconds(page, expression, argument, repeats):
    """The median time in seconds of `repeats` awaited calls of a JavaScript function, timed in the page."""
    page.evaluate(expression, argument)  # warm-up
    timed = f"""async (argument) => {{
        const start = performance.now();
        await ({expression})(argument);
        return (performance.now() - start) / 1000;
    }}"""
    return float(np.median([page.evaluate(timed, argument) for _ in range(repeats)]))


def labels_for(prior):
    """Labels 0, 1, 2, ... of the 16 grids for a conditional prior, else None."""
    return (np.arange(GRIDS) % prior.num_classes).astype(np.int32) if prior.conditional else None


def sampling_row(vqvae, prior, folder, repeats):
    """The run's page: the same codes as Python for one noise, and 16 grids timed in both."""
    path = export_web(os.path.join(folder, "web"), vqvae, prior)
    onnx = load_portable(path)
    labels = labels_for(prior)
    gumbel = gumbel_noise(GRIDS, prior.grid_shape, prior.num_embeddings, seed=0)
    python_codes = onnx.sample(gumbel, 1.0, labels)
    start = time.perf_counter()
    for _ in range(repeats):
        onnx.sample(gumbel, 1.0, labels)
    python_seconds = (time.perf_counter() - start) / repeats
    options = {"num": GRIDS, "labels": None if labels is None else labels.tolist()}
    with open_page(path) as page:
        page_codes = page.evaluate(
            "options => window.vqgenSample(options)", {**options, "noise": gumbel.ravel().tolist()}
        )
        seconds = page_seconds(page, "options => window.vqgenSample(options)", options, repeats)
    return {
        "grid": "x".join(map(str, prior.grid_shape)),
        "what": f"{type(prior).__name__}, the run's weights, full sampling",
        "page_seconds": seconds,
        "python_onnx_seconds": python_seconds,
        "same_codes": bool(np.array_equal(np.reshape(page_codes, python_codes.shape), python_codes)),
    }


def large_grid_row(vqvae, prior, size, folder, repeats):
    """A prior of the run's settings on a `size` x `size` grid, random weights: 16 grids timed."""
    import vqgen

    downsample = vqvae.image_shape[0] // vqvae.code_shape[0]
    vqvae_config = {**vqvae.get_config(), "input_shape": [size * downsample] * 2 + [vqvae.image_shape[2]]}
    large_vqvae = vqgen.VQVAE.from_config(vqvae_config)
    large_prior = type(prior).from_config({**prior.get_config(), "grid_shape": [size, size]})
    if not large_vqvae.built:
        large_vqvae.build((None, *large_vqvae.image_shape))
    if not large_prior.built:
        large_prior.build()
    path = export_web(os.path.join(folder, f"web{size}"), large_vqvae, large_prior)
    labels = labels_for(large_prior)
    options = {"num": GRIDS, "labels": None if labels is None else labels.tolist()}
    with open_page(path) as page:
        seconds = page_seconds(page, "options => window.vqgenSample(options)", options, repeats)
    return {
        "grid": f"{size}x{size}",
        "what": f"{type(prior).__name__}, the run's settings, random weights, full sampling",
        "page_seconds": seconds,
        "python_onnx_seconds": None,
        "same_codes": None,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="run folder with a trained VQ-VAE and prior")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--large-grid", type=int, help="also time a prior on this grid size (random weights)")
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: one repeat, results to a temporary folder"
    )
    args = parser.parse_args()
    if args.quick:
        args.repeats = 1
    run = RunFolder(args.run)
    vqvae = load_stage_model(run, "vqvae")
    prior = load_stage_model(run, "prior")
    with tempfile.TemporaryDirectory() as folder:
        rows = [sampling_row(vqvae, prior, folder, args.repeats)]
        if args.large_grid:
            rows.append(large_grid_row(vqvae, prior, args.large_grid, folder, args.repeats))
    load = os.getloadavg()
    print(
        f"{GRIDS} grids sampled in headless Chromium (onnxruntime-web {ONNXRUNTIME_WEB_VERSION}, "
        f"WebAssembly, one thread), median of {args.repeats}; "
        f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}\n"
    )
    print(
        "| grid | prior | page, 16 grids (s) | page, per sample (s) | Python ONNX Runtime, 16 grids (s) "
        "| same codes as Python |"
    )
    print("|---|---|---|---|---|---|")
    for row in rows:
        python = "—" if row["python_onnx_seconds"] is None else f"{row['python_onnx_seconds']:.2f}"
        same = "—" if row["same_codes"] is None else str(row["same_codes"])
        print(
            f"| {row['grid']} | {row['what']} | {row['page_seconds']:.2f} "
            f"| {row['page_seconds'] / GRIDS:.3f} | {python} | {same} |"
        )


if __name__ == "__main__":
    from results_file import run_and_record

    run_and_record(main, "benchmark_web")
