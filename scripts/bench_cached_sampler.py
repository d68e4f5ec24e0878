"""Benchmark the cached (incremental) sampler against the full compiled loop.

Times `PixelCNN.sample` with `method="full"` and `method="cached"` (each with
and without XLA `jit_compile`) on random-weight priors of the default depth
and width, and prints a table: method, jit, grid, seconds per batch, ratio vs
the full sampler without XLA (the reference, always timed). The first call of each
variant (tracing + XLA compilation + one run) is shown separately; the
reported figure is the median of `--repeats` further calls with new seeds.
It also checks that every variant returns the same grids for the same seed.

Example:

    python scripts/bench_cached_sampler.py --grids 4 7 16 --num-embeddings 512 --batch 16
    python scripts/bench_cached_sampler.py --grids 32 --variants full:nojit cached:nojit cached:jit
"""

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import prior  # noqa: E402
from prior import sampling  # noqa: E402

VARIANTS = {
    "full:nojit": ("full", False),
    "full:jit": ("full", True),
    "cached:nojit": ("cached", False),
    "cached:jit": ("cached", True),
}


def time_variant(model, method, jit, batch, repeats):
    """Returns (first-call seconds, median seconds per batch, grids for seed 0).

    With `repeats=0` the first call's time (tracing included) is the figure.

    The compile mode is read when a model first builds its sampler, so
    `model` must be a fresh copy that has not sampled yet.
    """
    sampling.JIT_COMPILE[method] = jit
    start = time.perf_counter()
    grids = model.sample(batch, seed=0, method=method)
    compile_seconds = time.perf_counter() - start
    timings = []
    for repeat in range(repeats):
        start = time.perf_counter()
        model.sample(batch, seed=repeat + 1, method=method)
        timings.append(time.perf_counter() - start)
    return compile_seconds, statistics.median(timings or [compile_seconds]), grids


def main():
    """Times the requested samplers on the requested grids and prints the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--grids", type=int, nargs="+", default=[8, 16, 32], help="square grid sides")
    parser.add_argument("--num-embeddings", type=int, default=512)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per variant")
    parser.add_argument(
        "--full-repeats-at-32",
        type=int,
        default=0,
        help="timed full-sampler calls on grids >= 32 (0: report the first call, tracing included)",
    )
    parser.add_argument(
        "--variants",
        nargs="+",
        default=list(VARIANTS),
        choices=list(VARIANTS),
        help="method:compile-mode pairs to time (full:nojit is the reference)",
    )
    args = parser.parse_args()
    defaults = dict(sampling.JIT_COMPILE)
    print(f"batch={args.batch} K={args.num_embeddings} default depth/width; shipped jit={defaults}")
    print(f"{'method':<8}{'jit':<7}{'grid':<8}{'first call s':>13}{'s/batch':>10}{'vs full':>9}  same grids")
    keras.utils.set_random_seed(0)
    for side in args.grids:
        weights = None
        results = {}
        for variant in ["full:nojit"] + [v for v in args.variants if v != "full:nojit"]:
            model = prior.PixelCNN(args.num_embeddings, (side, side))
            model.build()
            weights = weights or model.get_weights()
            model.set_weights(weights)
            method, jit = VARIANTS[variant]
            repeats = args.full_repeats_at_32 if method == "full" and side >= 32 else args.repeats
            results[method, jit] = time_variant(model, method, jit, args.batch, repeats)
        reference_seconds = results["full", False][1]
        reference_grids = results["full", False][2]
        for (method, jit), (compile_seconds, seconds, grids) in results.items():
            same = np.array_equal(grids, reference_grids)
            print(
                f"{method:<8}{str(jit):<7}{f'{side}x{side}':<8}{compile_seconds:>13.2f}{seconds:>10.3f}"
                f"{reference_seconds / seconds:>8.1f}x  {same}",
                flush=True,
            )
    sampling.JIT_COMPILE.update(defaults)


if __name__ == "__main__":
    from results_file import run_and_record

    run_and_record(main, "bench_cached_sampler")
