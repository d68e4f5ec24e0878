"""Time every sampler of the three priors and compare with a saved baseline.

Builds random-weight priors (default settings, class-conditional with label dropout so guidance
runs) with fixed weights, times each sampler (plain, guided, inpainting, cached and full loops,
the noise-driven loop, MaskGIT's decoding), and prints a table: seconds of the first call
(tracing included), median wall and CPU seconds per batch of `--repeats` further calls, the
baseline's medians and the ratios baseline / now (> 1: faster now), and a digest of the grids drawn for a
fixed seed, so a run on another commit shows whether the arrays are identical. The table goes to
benchmarks/results/bench_samplers.md; its ratios are against the `--baseline` file, a `--save` of a
run on an earlier commit (a separate process, by the nature of the comparison).

Example:

    python scripts/bench_samplers.py --save /tmp/before.json            # on the old commit
    python scripts/bench_samplers.py --baseline /tmp/before.json        # on the new one
    python scripts/bench_samplers.py --grids 8 --full-up-to 8 --only pixelcnn
"""

import argparse
import hashlib
import json
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import prior  # noqa: E402
from prior import sampling  # noqa: E402

NUM_CLASSES = 10


def randomised(model, seed):
    """`model` with every weight drawn from a normal of scale 0.3 (fixed by `seed`)."""
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(scale=0.3, size=w.shape).astype("float32") for w in model.get_weights()])
    return model


def make_prior(kind, num_embeddings, side):
    """A random-weight conditional prior of `kind` with the default settings."""
    classes = {"pixelcnn": prior.PixelCNN, "transformer": prior.Transformer, "maskgit": prior.MaskGIT}
    model = classes[kind](num_embeddings, (side, side), num_classes=NUM_CLASSES, label_dropout=0.1)
    return randomised(model, seed=side)


def samplers(kind, model, batch):
    """`{name: call(seed) -> grids}`: the samplers of `kind` to time."""
    labels = np.arange(batch) % NUM_CLASSES
    codes = np.random.default_rng(0).integers(0, model.num_embeddings, (batch, *model.grid_shape))
    mask = np.zeros(codes.shape, bool)
    mask[:, model.grid_shape[0] // 2 :] = True  # re-draw the lower half
    calls = {
        "plain": lambda seed, **m: model.sample(batch, labels=labels, seed=seed, **m),
        "guided": lambda seed, **m: model.sample(batch, labels=labels, seed=seed, guidance=2.0, **m),
        "inpaint": lambda seed, **m: model.inpaint(codes, mask, labels=labels, seed=seed, **m),
    }
    if kind == "maskgit":
        return calls
    methods = {}
    for method in ("cached", "full"):
        for name, call in calls.items():
            methods[f"{method}:{name}"] = lambda seed, call=call, method=method: call(seed, method=method)
    function = tf.function(sampling.sample_full_from_noise, reduce_retracing=True)

    def from_noise(seed):
        shape = [batch, *model.grid_shape, model.num_embeddings]
        gumbel = -tf.math.log(-tf.math.log(tf.random.stateless_uniform(shape, [seed, 0], 1e-7, 1.0)))
        return function(model, gumbel, tf.constant(1.0), tf.constant(labels, tf.int32)).numpy()

    methods["full:noise"] = from_noise
    return methods


def time_call(call, repeats):
    """`(first-call seconds, median wall seconds and median CPU seconds of the next `repeats` calls,
    grids of seed 0)`. The CPU time (of this process, all threads) is steadier than the wall time
    on a machine shared with other jobs."""
    start = time.perf_counter()
    grids = call(0)
    first = time.perf_counter() - start
    wall, cpu = [], []
    for repeat in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        call(repeat + 1)
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    if not wall:
        wall = cpu = [first]
    return first, statistics.median(wall), statistics.median(cpu), np.asarray(grids)


def main():
    """Times the samplers and prints the table (and saves it with `--save`)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--grids", type=int, nargs="+", default=[8, 16], help="square grid sides")
    parser.add_argument("--full-up-to", type=int, default=8, help="largest side the full loops are timed at")
    parser.add_argument("--num-embeddings", type=int, default=512)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per sampler after the first")
    parser.add_argument("--only", nargs="+", default=["pixelcnn", "transformer", "maskgit"])
    parser.add_argument("--save", help="write the results to this JSON file")
    parser.add_argument("--baseline", help="JSON file of an earlier run to compare with")
    args = parser.parse_args()
    baseline = {}
    if args.baseline:
        with open(args.baseline) as file:
            baseline = json.load(file)
    results = {}
    print(f"batch={args.batch} K={args.num_embeddings}, random-weight default priors")
    print(
        f"{'prior':<12}{'sampler':<16}{'grid':<7}{'first s':>8}{'base':>8}{'ratio':>7}{'wall s':>8}"
        f"{'base':>8}{'ratio':>7}{'cpu s':>8}{'base':>8}{'ratio':>7}  digest (same?)"
    )
    for kind in args.only:
        for side in args.grids:
            model = make_prior(kind, args.num_embeddings, side)
            for name, call in samplers(kind, model, args.batch).items():
                if name.startswith("full") and side > args.full_up_to:
                    continue
                key = f"{kind} {name} {side}"
                first, wall, cpu, grids = time_call(call, args.repeats)
                digest = hashlib.sha256(grids.astype(np.int32).tobytes()).hexdigest()[:12]
                results[key] = {"first": first, "seconds": wall, "cpu_seconds": cpu, "digest": digest}
                before = baseline.get(key)
                columns = [f"{kind:<12}{name:<16}{f'{side}x{side}':<7}"]
                for now, field, digits in (
                    (first, "first", 2),
                    (wall, "seconds", 3),
                    (cpu, "cpu_seconds", 3),
                ):
                    if before:
                        columns.append(
                            f"{now:>8.{digits}f}{before[field]:>8.{digits}f}{before[field] / now:>6.2f}x"
                        )
                    else:
                        columns.append(f"{now:>8.{digits}f}{'-':>8}{'-':>7}")
                columns.append(f"  {digest}" + (f" ({before['digest'] == digest})" if before else ""))
                print("".join(columns), flush=True)
    if args.save:
        with open(args.save, "w") as file:
            json.dump(results, file, indent=1)


if __name__ == "__main__":
    from results_file import run_and_record

    run_and_record(main, "bench_samplers")
