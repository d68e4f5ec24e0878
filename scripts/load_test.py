"""A bounded load test of an exported SavedModel, served from one process as a model server would.

N threads share one `tf.saved_model.load`ed model and each makes M calls, alternating the `sample`
and `reconstruct` signatures. Every response is checked against a reference computed before the
threads start (same seed -> same codes, whichever thread asks; same images -> same codes), latency
percentiles are reported per signature, and the resident memory (RSS) after warm-up is compared with
the RSS at the end: it must not grow by more than `--rss-growth-mib`. Prints a Markdown table; exits
1 if any response was wrong or failed, or memory grew beyond the bound.

python scripts/load_test.py --model runs/digits/saved_model
python scripts/load_test.py --model runs/digits/saved_model --threads 8 --calls 100 --max-seconds 300
python scripts/load_test.py --model exported/digits/1 --num-samples 16 --batch 32 --json load.json
"""

import argparse
import json
import os
import sys
import threading
import time

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import tensorflow as tf  # noqa: E402


def rss_mib():
    """The resident set size of this process now, in MiB (Linux `/proc/self/statm`)."""
    with open("/proc/self/statm", encoding="ascii") as stream:
        resident_pages = int(stream.read().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def percentile(values, q):
    return float(np.percentile(np.asarray(values) * 1000.0, q)) if values else float("nan")


class LoadTest:
    """Calls one loaded SavedModel from many threads and checks every answer.

    Args:
        model: the object `tf.saved_model.load` returned.
        num_samples: int. Samples per `sample` call.
        batch: int. Images per `reconstruct` call.
        seeds: int. Distinct seeds cycled through; each has one reference answer.
    """

    def __init__(self, model, num_samples, batch, seeds):
        self.sample = model.signatures["sample"]
        self.reconstruct = model.signatures["reconstruct"]
        inputs = self.sample.structured_input_signature[1]
        self.labels = (
            tf.constant(np.arange(num_samples) % 10, tf.int32) if "labels" in inputs else None
        )  # a conditional prior: labels 0, 1, ... (one per sample); `sample` takes nothing else
        image_shape = self.reconstruct.structured_input_signature[1]["images"].shape[1:]
        self.images = tf.constant(
            np.random.default_rng(0).uniform(size=(batch, *image_shape)).astype("float32")
        )
        self.num_samples = num_samples
        self.seeds = seeds
        self.expected = {}

    def call_sample(self, seed):
        arguments = dict(
            num_samples=tf.constant(self.num_samples, tf.int32),
            temperature=tf.constant(1.0, tf.float32),
            seed=tf.constant(seed, tf.int64),
        )
        if self.labels is not None:
            arguments["labels"] = self.labels
        return self.sample(**arguments)["codes"].numpy()

    def call_reconstruct(self):
        return self.reconstruct(images=self.images)["codes"].numpy()

    def warm_up(self):
        """The reference answers, computed one call at a time (this also traces and compiles)."""
        self.expected = {("sample", seed): self.call_sample(seed) for seed in range(self.seeds)}
        self.expected[("reconstruct", 0)] = self.call_reconstruct()

    def run(self, threads, calls, max_seconds):
        """Runs `threads` x `calls`; returns latencies per signature, errors and calls made."""
        latencies = {"sample": [], "reconstruct": []}
        errors = []
        made = [0]
        guard = threading.Lock()
        deadline = time.monotonic() + max_seconds
        start = threading.Barrier(threads)

        def worker(index):
            start.wait()
            for call in range(calls):
                if time.monotonic() > deadline:
                    return
                name = "sample" if (index + call) % 2 == 0 else "reconstruct"
                key = (name, (index * calls + call) % self.seeds if name == "sample" else 0)
                began = time.perf_counter()
                try:
                    codes = self.call_sample(key[1]) if name == "sample" else self.call_reconstruct()
                    problem = None if np.array_equal(codes, self.expected[key]) else f"{key}: wrong codes"
                except Exception as error:  # a failed call is counted, not fatal
                    problem = f"{key}: {type(error).__name__}: {str(error).splitlines()[0][:200]}"
                elapsed = time.perf_counter() - began
                with guard:
                    latencies[name].append(elapsed)
                    made[0] += 1
                    if problem:
                        errors.append(problem)

        workers = [threading.Thread(target=worker, args=(index,)) for index in range(threads)]
        began = time.perf_counter()
        for thread in workers:
            thread.start()
        for thread in workers:
            thread.join()
        return latencies, errors, made[0], time.perf_counter() - began


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="SavedModel folder (vqgen export / RUN/saved_model)")
    parser.add_argument("--threads", type=int, default=4, help="concurrent callers (default: %(default)s)")
    parser.add_argument("--calls", type=int, default=50, help="calls per thread (default: %(default)s)")
    parser.add_argument(
        "--num-samples", type=int, default=8, help="samples per sample call (default: %(default)s)"
    )
    parser.add_argument(
        "--batch", type=int, default=16, help="images per reconstruct call (default: %(default)s)"
    )
    parser.add_argument("--seeds", type=int, default=4, help="distinct sample seeds (default: %(default)s)")
    parser.add_argument(
        "--max-seconds", type=float, default=600, help="stop calling after this long (default: %(default)s)"
    )
    parser.add_argument(
        "--rss-growth-mib",
        type=float,
        default=64,
        help="largest allowed RSS growth from after warm-up to the end (default: %(default)s)",
    )
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args(argv)

    rss_start = rss_mib()
    model = tf.saved_model.load(args.model)
    test = LoadTest(model, args.num_samples, args.batch, args.seeds)
    rss_loaded = rss_mib()
    test.warm_up()
    rss_warm = rss_mib()
    latencies, errors, made, seconds = test.run(args.threads, args.calls, args.max_seconds)
    rss_end = rss_mib()
    growth = rss_end - rss_warm
    result = {
        "model": args.model,
        "threads": args.threads,
        "calls_per_thread": args.calls,
        "calls_made": made,
        "seconds": seconds,
        "calls_per_second": made / seconds,
        "num_samples": args.num_samples,
        "batch": args.batch,
        "latency_ms": {
            name: {"calls": len(values), "p50": percentile(values, 50), "p99": percentile(values, 99)}
            for name, values in latencies.items()
        },
        "rss_mib": {"start": rss_start, "loaded": rss_loaded, "warm": rss_warm, "end": rss_end},
        "rss_growth_mib": growth,
        "rss_growth_bound_mib": args.rss_growth_mib,
        "errors": len(errors),
        "first_errors": errors[:5],
    }
    print(
        f"{args.threads} threads x {args.calls} calls ({made} made in {seconds:.1f} s, "
        f"{made / seconds:.1f} calls/s), `sample` of {args.num_samples}, `reconstruct` of {args.batch} "
        "images\n"
    )
    print("| signature | calls | p50 latency (ms) | p99 latency (ms) | wrong or failed |")
    print("|---|---|---|---|---|")
    for name, values in latencies.items():
        wrong = sum(error.startswith(f"('{name}'") for error in errors)
        p50, p99 = percentile(values, 50), percentile(values, 99)
        print(f"| `{name}` | {len(values)} | {p50:.1f} | {p99:.1f} | {wrong} |")
    print()
    print("| RSS after load (MiB) | after warm-up | at the end | growth | bound |")
    print("|---|---|---|---|---|")
    print(
        f"| {rss_loaded:.0f} | {rss_warm:.0f} | {rss_end:.0f} | {growth:+.1f} | {args.rss_growth_mib:.0f} |"
    )
    for error in errors[:5]:
        print(f"error: {error}", file=sys.stderr)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as stream:
            json.dump(result, stream, indent=2)
    return 1 if errors or growth > args.rss_growth_mib else 0


if __name__ == "__main__":
    from results_file import run_and_record

    run_and_record(main, "load_test")
