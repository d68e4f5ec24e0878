"""Parallel decoding against autoregressive sampling: seconds to sample 16 code grids, in one process.

    python scripts/benchmark_parallel_decoding.py                      # 32x32, K=512, the issue's table
    python scripts/benchmark_parallel_decoding.py --grid 16 --repeats 3 --json decoding.json

Builds each prior with its defaults (`prior.settings`) on a `--grid` x `--grid` grid of
`--num-embeddings` codes, untrained (random weights: the cost of a pass does not depend on them),
and times `sample(16, seed=...)`: the cached PixelCNN and the key/value-cached Transformer (one
position per step, `rows * cols` steps) against MaskGIT's iterative decoding at 8 and 16 steps
(`--steps`). Each figure is the best of `--repeats` calls after one warm-up call (tracing and
compilation; `compare_priors.seconds`), all in this process. It prints a table with each
sampler's speed-up over the fastest autoregressive one, and the load average before and after
(other jobs share the CPU).

It then prints how fast MaskGIT could be on this CPU at all: its multiply-adds per network pass,
counted from the model's sizes (per position and block: `4 D^2` for the query, key, value and
output projections, `2 D M` for the MLP, `2 T D` for the attention scores and their weighted sum
over all `T = rows * cols` positions; then `D K` for the output head), times the steps, over the
FLOP/s of a 4096^3 matmul measured in this process (float32 and bfloat16): a lower bound on its
seconds, set against the seconds that the issue's goal (10x the fastest autoregressive sampler)
allows.
"""

import argparse
import functools
import json
import os

from benchmark_paper_size import measured_matmul_flops
from compare_priors import seconds

from prior.registry import PRIORS

NUM_GRIDS = 16
AUTOREGRESSIVE = ("pixelcnn", "transformer")


def maskgit_pass_flops(model, num_grids):
    """Float operations (2 per multiply-add) of one MaskGIT network pass over `num_grids` grids,
    counted from its sizes (see the module docstring); embeddings and norms left out."""
    D, M, T = model.hidden_dim, model.intermediate_dim, model.sequence_length
    per_position_and_block = 4 * D * D + 2 * D * M + 2 * T * D
    per_position = model.num_layers * per_position_and_block + D * model.num_embeddings
    return 2 * num_grids * T * per_position


def sample_once(model, seeds, options):
    """`model.sample` of `NUM_GRIDS` grids with the next seed of `seeds` and the sampler's `options`."""
    return model.sample(NUM_GRIDS, seed=next(seeds), **options)


def main():
    """Parses the options, times every sampler and prints the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", type=int, default=32, help="rows = cols of the code grid")
    parser.add_argument("--num-embeddings", type=int, default=512, help="codes K")
    parser.add_argument("--steps", type=int, nargs="+", default=[8, 16], help="MaskGIT decoding steps")
    parser.add_argument("--repeats", type=int, default=1, help="timed calls after the warm-up")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    load_before = os.getloadavg()
    grid = (args.grid, args.grid)
    rows = []
    models = {}
    for kind in (*AUTOREGRESSIVE, "maskgit"):
        model = models[kind] = PRIORS[kind].model_class(num_embeddings=args.num_embeddings, grid_shape=grid)
        seeds = iter(range(1_000_000))  # a new seed per call
        if kind in AUTOREGRESSIVE:  # the cached loop: "auto" on every grid measured
            options = [("cached", {})]
        else:
            options = [(f"{steps} steps", {"steps": steps}) for steps in args.steps]
        for label, extra in options:
            best = seconds(functools.partial(sample_once, model, seeds, extra), args.repeats)
            rows.append({"prior": kind, "sampler": label, "seconds": best})
            print(f"{kind:12s} {label:9s} {best:9.2f} s", flush=True)
    fastest = min(row["seconds"] for row in rows if row["prior"] in AUTOREGRESSIVE)
    for row in rows:
        row["speedup_vs_fastest_autoregressive"] = fastest / row["seconds"]
    load_after = os.getloadavg()
    print(
        f"\n{NUM_GRIDS} grids of {args.grid}x{args.grid}, K={args.num_embeddings}, default sizes "
        f"({', '.join(f'{kind}: {PRIORS[kind].settings}' for kind in PRIORS)}); "
        f"load average {load_before[0]:.1f} before, {load_after[0]:.1f} after"
    )
    print(f"{'prior':12s} {'sampler':9s} {'seconds':>9s} {'speed-up':>9s}")
    for row in rows:
        ratio = row["speedup_vs_fastest_autoregressive"]
        print(f"{row['prior']:12s} {row['sampler']:9s} {row['seconds']:9.2f} {ratio:8.2f}x")
    goal = fastest / 10
    pass_flops = maskgit_pass_flops(models["maskgit"], NUM_GRIDS)
    peaks = {dtype: measured_matmul_flops(dtype) for dtype in ("float32", "bfloat16")}
    print(
        f"\nThe goal, 10x the fastest autoregressive sampler: {goal:.3f} s. One MaskGIT pass over "
        f"{NUM_GRIDS} grids: {pass_flops / 1e9:.1f} GFLOP; a measured 4096^3 matmul: "
        + ", ".join(f"{peak / 1e9:.0f} GFLOP/s in {dtype}" for dtype, peak in peaks.items())
    )
    bounds = []
    for steps in args.steps:
        bound = {dtype: steps * pass_flops / peak for dtype, peak in peaks.items()}
        bounds.append({"steps": steps, "seconds_at_matmul_peak": bound})
        print(
            f"MaskGIT {steps} steps at the matmul peak: at least "
            + ", ".join(
                f"{value:.2f} s in {dtype} ({value / goal:.1f}x the goal)" for dtype, value in bound.items()
            )
        )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as stream:
            json.dump(
                {
                    "rows": rows,
                    "load": [load_before, load_after],
                    "goal_seconds": goal,
                    "maskgit_pass_flops": pass_flops,
                    "matmul_flops_per_second": peaks,
                    "bounds": bounds,
                    **vars(args),
                },
                stream,
                indent=2,
            )


if __name__ == "__main__":
    from results_file import run_and_record

    run_and_record(main, "benchmark_parallel_decoding")
