"""vqgen benchmark suite: every fast path against its baseline, measured in the same run.

    python scripts/benchmark.py                          # full run (8-12 min on 2 busy cores)
    python scripts/benchmark.py --quick                  # smoke run with tiny sizes (< 2 min)
    python scripts/benchmark.py --json bench.json        # also write the rows as JSON
    python scripts/benchmark.py --quick --json /tmp/quick.json

Sections (all on random or freshly trained weights, batch and seeds fixed):

1. VectorQuantizer forward + backward (one `tf.function`, gradient w.r.t. the inputs and the
   codebook) at N=16,384, D=64, K=512 against a reference that broadcasts the `[N, K, D]`
   difference tensor; throughput and peak memory, each measured in a fresh subprocess, and the
   peak again at D=16 (K*N*D / 4, same N*K) to show which peak grows with K*N*D. Peak memory is the
   growth of the process's resident high-water mark (`VmHWM`, reset through
   `/proc/self/clear_refs` after TensorFlow is imported and the step traced); a probe that
   allocates a known tensor validates the method in the same run.
2. VQ-VAE training images/s: vqgen's default configuration against the public Keras example's
   simple recipe (`scripts/compare_keras_example.py`), same digits, batch size and epochs,
   tracing excluded.
3. PixelCNN sampling, seconds per batch at 7x7 (K=128), 16x16 (K=256) and 32x32 (K=512) grids,
   default depth/width, random weights: the public example's per-position `predict` loop
   (7x7 only, `scripts/benchmark_prior.py`), the compiled uncached loop (`method="full"`) and the
   cached sampler (`method="cached"`).
4. SavedModel `sample` signature (loaded with `tf.saved_model.load`) against the in-process
   `sample`, same seeds; the codes must be identical.

The paper's size (128x128x3 -> 32x32 codes, K=512, batch 32: stage-1 images/s in float32 and
bfloat16 against the Keras example recipe, FLOP/s, prior grids/s, cached against full sampling,
peak memory, a profile of the train step) has its own script, `scripts/benchmark_paper_size.py`,
since each of its rows takes minutes; MaskGIT against the autoregressive samplers is
`scripts/benchmark_parallel_decoding.py`.

Timings are medians of up to `repeats` calls after a warm-up call (tracing, XLA compilation),
stopping early once a variant has spent its time budget; the table says how many calls were
timed. "Gain" is the baseline's cost divided by the variant's (or the variant's throughput
divided by the baseline's): above 1 means better than the baseline.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from benchmark_prior import naive_sample  # noqa: E402
from compare_keras_example import keras_example_vqvae, train_and_measure  # noqa: E402

import prior  # noqa: E402
import vqgen  # noqa: E402
from prior import sampling  # noqa: E402
from vqgen.data import ImageSet, load_images, split_images, to_dataset  # noqa: E402
from vqgen.settings import DATA_DEFAULTS, VQVAE_TRAINING_DEFAULTS  # noqa: E402

SETTINGS = {
    "full": dict(
        # (N, D, K): the headline size, then K*N*D / 4 at the same N*K.
        quantizer_sizes=[(16384, 64, 512), (16384, 16, 512)],
        probe_mebibytes=256,
        quantizer_repeats=5,
        train_images=None,  # all 4,500 training digits
        train_epochs=2,
        sampling_grids=[(7, 128), (16, 256), (32, 512)],  # (side, K)
        sample_batch=16,
        repeats=3,
        budget_seconds=60.0,
    ),
    "quick": dict(
        quantizer_sizes=[(2048, 64, 128), (2048, 16, 128)],
        probe_mebibytes=64,
        quantizer_repeats=3,
        train_images=256,
        train_epochs=1,
        sampling_grids=[(7, 128)],
        sample_batch=4,
        repeats=2,
        budget_seconds=2.0,
    ),
}


# ---------------------------------------------------------------------- measuring


def median_seconds(call, repeats, budget_seconds):
    """Times `call()` up to `repeats` times, stopping once `budget_seconds` are spent.

    The caller warms `call` up first; at least one call is always timed.

    Args:
        call: function of the repeat index (0, 1, ...), e.g. to vary the seed.
        repeats: int. Most calls to time.
        budget_seconds: float. Stop timing once the timed calls add up to this.

    Returns:
        `(median seconds, number of timed calls)`.
    """
    timings = []
    while len(timings) < repeats and sum(timings) < budget_seconds:
        start = time.perf_counter()
        call(len(timings))
        timings.append(time.perf_counter() - start)
    return statistics.median(timings), len(timings)


def _status_mebibytes(field):
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024  # reported in kB
    raise RuntimeError(f"/proc/self/status has no {field} line; the memory figures need Linux")


def reset_peak_memory():
    """Resets this process's resident high-water mark (Linux) and returns the current RSS in MiB."""
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")  # "5": reset VmHWM to the current resident set size
    return _status_mebibytes("VmRSS")


def peak_memory():
    """This process's resident high-water mark (`VmHWM`) in MiB."""
    return _status_mebibytes("VmHWM")


# ---------------------------------------------------------------------- 1. quantizer


def broadcast_quantize(flat_z, codebook, beta):
    """Reference quantizer: nearest codes from the explicit `[N, K, D]` difference tensor.

    Args:
        flat_z: float32 `[N, D]` vectors.
        codebook: float32 `[K, D]` codes.
        beta: float. Weight of the commitment term.

    As in `VectorQuantizer`, `argmin` stops the gradient, so the backward pass never touches the
    `[N, K, D]` tensor: the two implementations differ in the forward distances only.

    Returns:
        `(quantized [N, D] with straight-through gradient, codebook + beta * commitment loss)`,
        the same quantities as `VectorQuantizer(ema=False)`.
    """
    differences = flat_z[:, tf.newaxis, :] - codebook[tf.newaxis, :, :]  # [N, K, D]
    indices = tf.argmin(tf.reduce_sum(tf.square(differences), axis=-1), axis=1, output_type=tf.int32)
    z_q = tf.gather(codebook, indices)
    loss = tf.reduce_mean(tf.square(tf.stop_gradient(flat_z) - z_q)) + beta * tf.reduce_mean(
        tf.square(flat_z - tf.stop_gradient(z_q))
    )
    return flat_z + tf.stop_gradient(z_q - flat_z), loss


def quantizer_training_step(implementation, num_codes, dim):
    """A compiled forward + backward pass of the quantizer on `[N, D]` vectors.

    Args:
        implementation: "vqgen" (`VectorQuantizer`, matmul expansion) or "broadcast".
        num_codes: int K.
        dim: int D.

    Returns:
        `step(z)`, returning the gradients of `loss + mean(quantized**2)` with respect to `z` and
        the codebook.
    """
    quantizer = vqgen.VectorQuantizer(num_codes, dim, ema=False, seed=0)
    quantizer.build((None, dim))

    @tf.function
    def step(z):
        with tf.GradientTape() as tape:
            tape.watch(z)
            if implementation == "vqgen":
                result = quantizer.quantize_with_stats(z, training=False)
                quantized, loss = result.quantized, result.loss
            else:
                quantized, loss = broadcast_quantize(z, quantizer.codebook.value, quantizer.beta)
            objective = loss + tf.reduce_mean(tf.square(quantized))
        gradients = tape.gradient(objective, [z, quantizer.codebook.value])
        return [tf.convert_to_tensor(gradient) for gradient in gradients]  # dense, also for the gather

    return step


def quantizer_worker(implementation, num_vectors, dim, num_codes, repeats, budget_seconds):
    """Subprocess body: times one quantizer step and measures its peak memory growth.

    Args:
        implementation: "vqgen", "broadcast", or "probe": a step that only materialises a
            float32 `[num_vectors, dim]` tensor, to validate the memory measurement.
        num_vectors: int N.
        dim: int D.
        num_codes: int K (unused by the probe).
        repeats: int. Most timed calls.
        budget_seconds: float. Time budget of the timed calls.

    Returns:
        dict with `seconds` (median per step), `timed_calls` and `peak_mebibytes`: the growth of
        the resident high-water mark over the baseline taken after tracing, before the first run.
    """
    vectors = tf.random.stateless_normal([num_vectors, dim], seed=[0, 1])
    if implementation == "probe":
        step = tf.function(lambda z: tf.reduce_sum(tf.fill([num_vectors, dim], z[0, 0])))
    else:
        step = quantizer_training_step(implementation, num_codes, dim)
    step.get_concrete_function(vectors)
    baseline = reset_peak_memory()
    step(vectors)  # warm-up
    seconds, calls = median_seconds(
        lambda _: [tensor.numpy() for tensor in tf.nest.flatten(step(vectors))], repeats, budget_seconds
    )
    return {"seconds": seconds, "timed_calls": calls, "peak_mebibytes": peak_memory() - baseline}


def run_worker(*arguments):
    """Runs `quantizer_worker(*arguments)` in a fresh Python process and returns its result."""
    command = [sys.executable, os.path.abspath(__file__), "--quantizer-worker", json.dumps(arguments)]
    finished = subprocess.run(command, capture_output=True, text=True)
    if finished.returncode != 0:
        raise RuntimeError(f"quantizer worker {arguments} failed:\n{finished.stderr[-3000:]}")
    return json.loads(finished.stdout.strip().splitlines()[-1])


def check_quantizers_agree():
    """Both implementations give the same gradients on a small problem (a correctness guard)."""
    vectors = tf.random.stateless_normal([256, 8], seed=[0, 2])
    results = []
    for implementation in ("vqgen", "broadcast"):
        step = quantizer_training_step(implementation, num_codes=32, dim=8)
        results.append([gradient.numpy() for gradient in step(vectors)])
    for ours, reference in zip(*results):
        if not np.allclose(ours, reference, rtol=1e-5, atol=1e-6):
            raise AssertionError("vqgen and broadcast quantizer gradients differ; the benchmark is invalid")


def benchmark_quantizer(settings, rows):
    """Section 1: quantizer throughput and peak memory, vqgen against the broadcast reference."""
    check_quantizers_agree()
    repeats, budget = settings["quantizer_repeats"], settings["budget_seconds"]
    probe_vectors = settings["probe_mebibytes"] * 2**20 // (4 * 64)  # float32 [probe_vectors, 64]
    probe = run_worker("probe", probe_vectors, 64, 0, 1, budget)
    rows.append(
        row(
            "memory probe",
            f"a {settings['probe_mebibytes']} MiB float32 tensor in a tf.function",
            probe["peak_mebibytes"],
            "MiB peak growth",
            detail=f"expected {settings['probe_mebibytes']} MiB: validates the measurement",
        )
    )
    names = {"broadcast": "broadcast [N,K,D] reference", "vqgen": "vqgen VectorQuantizer"}
    peaks = {}
    for index, (num_vectors, dim, num_codes) in enumerate(settings["quantizer_sizes"]):
        size = f"N={num_vectors:,} D={dim} K={num_codes}"
        reference, ours = (run_worker(name, num_vectors, dim, num_codes, repeats, budget) for name in names)
        peaks[dim] = {"broadcast": reference["peak_mebibytes"], "vqgen": ours["peak_mebibytes"]}
        if index == 0:
            rows.append(
                row(
                    f"quantizer fwd+bwd {size}",
                    names["broadcast"],
                    num_vectors / reference["seconds"],
                    "vectors/s",
                    calls=reference["timed_calls"],
                )
            )
            rows.append(
                row(
                    f"quantizer fwd+bwd {size}",
                    names["vqgen"],
                    num_vectors / ours["seconds"],
                    "vectors/s",
                    calls=ours["timed_calls"],
                    gains={"broadcast": reference["seconds"] / ours["seconds"]},
                )
            )
        rows.append(
            row(f"quantizer peak memory {size}", names["broadcast"], reference["peak_mebibytes"], "MiB")
        )
        rows.append(
            row(
                f"quantizer peak memory {size}",
                names["vqgen"],
                ours["peak_mebibytes"],
                "MiB",
                gains={"broadcast": reference["peak_mebibytes"] / ours["peak_mebibytes"]},
            )
        )
    large, small = (dim for _, dim, _ in settings["quantizer_sizes"])
    setting = f"quantizer peak, D={large} over D={small} (K*N*D x{large // small}, N*K fixed)"
    for name, label in names.items():
        rows.append(row(setting, label, peaks[large][name] / peaks[small][name], "x"))


# ---------------------------------------------------------------------- 2. VQ-VAE training


def benchmark_training(settings, rows):
    """Section 2: VQ-VAE training images/s, vqgen's defaults against the Keras example recipe."""
    batch_size, epochs = VQVAE_TRAINING_DEFAULTS.batch_size, settings["train_epochs"]
    train, validation = split_images(load_images("digits"), DATA_DEFAULTS.validation_fraction, seed=0)
    if settings["train_images"]:
        count = settings["train_images"]
        train = ImageSet(train.images[:count], train.labels[:count], train.num_classes, train.name)
    validation_images = to_dataset(validation, len(validation)).get_single_element().numpy()
    setting = f"VQ-VAE training, {len(train):,} digits, batch {batch_size}, {epochs} epochs"
    keras.utils.set_random_seed(0)
    models = {"example": (keras_example_vqvae(train.image_shape), 1e-3)}
    keras.utils.set_random_seed(0)
    models["default"] = (
        vqgen.VQVAE(input_shape=train.image_shape, seed=0),
        VQVAE_TRAINING_DEFAULTS.learning_rate,
    )
    # (held-out PSNR, codes used, perplexity, training images/s) of each, epochs interleaved.
    results = train_and_measure(models, train, validation_images, epochs, batch_size)
    example, default = results["example"], results["default"]
    rows.append(
        row(
            setting,
            "Keras example recipe",
            example[3],
            "images/s",
            detail=f"held-out PSNR {example[0]:.1f} dB",
        )
    )
    rows.append(
        row(
            setting,
            "vqgen default",
            default[3],
            "images/s",
            gains={"example": default[3] / example[3]},
            detail=f"held-out PSNR {default[0]:.1f} dB",
        )
    )


# ---------------------------------------------------------------------- 3. sampling


def time_sampler(model, method, batch, repeats, budget_seconds):
    """Times `model.sample(batch, seed=1, 2, ..., method=method)` after a warm-up call.

    The XLA-compiled sampler compiles once per batch size, so it warms up with the timed batch
    size; the others are shape-generic graphs that a 1-grid call traces just as well, and far
    sooner (the uncached loop takes minutes per batch of 32x32 grids).

    Returns:
        `(median seconds, timed calls, the grids of seed 1)`.
    """
    model.sample(batch if sampling.JIT_COMPILE[method] else 1, seed=0, method=method)
    first_grids = []

    def sample(repeat):
        grids = model.sample(batch, seed=repeat + 1, method=method)
        if repeat == 0:
            first_grids.append(grids)

    seconds, calls = median_seconds(sample, repeats, budget_seconds)
    return seconds, calls, first_grids[0]


def benchmark_sampling(settings, rows):
    """Section 3: seconds per batch of the naive loop, the full loop and the cached sampler."""
    batch, repeats, budget = settings["sample_batch"], settings["repeats"], settings["budget_seconds"]
    for side, num_codes in settings["sampling_grids"]:
        keras.utils.set_random_seed(0)
        model = prior.PixelCNN(num_codes, (side, side))
        model.build()
        setting = f"sampling {batch} grids {side}x{side} K={num_codes}"
        naive = None
        if side == 7:
            model.predict(np.zeros((batch, side, side), "int32"), verbose=0)  # traces predict
            naive, calls = median_seconds(
                lambda repeat, model=model: naive_sample(model, batch, seed=repeat), repeats, budget
            )
            rows.append(row(setting, "naive predict loop (public example)", naive, "s/batch", calls=calls))
        full, calls, full_grids = time_sampler(model, "full", batch, repeats, budget)
        rows.append(
            row(
                setting,
                'compiled loop, method="full"',
                full,
                "s/batch",
                calls=calls,
                gains={"naive": naive / full} if naive else {},
            )
        )
        cached, calls, cached_grids = time_sampler(model, "cached", batch, repeats, budget)
        gains = {"naive": naive / cached} if naive else {}
        rows.append(
            row(
                setting,
                'cached sampler, method="cached"',
                cached,
                "s/batch",
                calls=calls,
                gains={**gains, "full": full / cached},
                detail=f"same codes as full for seed 1: {np.array_equal(full_grids, cached_grids)}",
            )
        )


# ---------------------------------------------------------------------- 4. SavedModel


def benchmark_saved_model(settings, rows):
    """Section 4: the exported `sample` signature against in-process sampling, same seeds."""
    batch, repeats, budget = settings["sample_batch"], settings["repeats"], settings["budget_seconds"]
    keras.utils.set_random_seed(0)
    vqvae = vqgen.VQVAE(input_shape=(28, 28, 1), seed=0)
    code_prior = prior.PixelCNN(vqvae.num_embeddings, vqvae.grid_shape)
    code_prior.build()
    rows_, columns = vqvae.grid_shape
    method = code_prior.resolve_sampling_method("auto")
    setting = f"sample {batch} grids {rows_}x{columns} K={vqvae.num_embeddings} (auto = {method})"
    with tempfile.TemporaryDirectory() as folder:
        path = vqgen.export_saved_model(os.path.join(folder, "export"), vqvae, code_prior)
        signature = tf.saved_model.load(path).signatures["sample"]

        def exported(repeat):
            return signature(
                num_samples=tf.constant(batch),
                temperature=tf.constant(1.0),
                seed=tf.constant(repeat + 1, tf.int64),
            )["codes"].numpy()

        def in_process(repeat):
            return code_prior.sample(batch, seed=repeat + 1)

        def in_process_decoded(repeat):
            return vqvae.decode(code_prior.sample(batch, seed=repeat + 1))

        for repeat in range(repeats):  # also the warm-up
            if not np.array_equal(exported(repeat), in_process(repeat)):
                raise AssertionError(f"the SavedModel and in-process sample differ for seed {repeat + 1}")
        in_process_decoded(0)
        timings = [
            median_seconds(call, repeats, budget) for call in (in_process, in_process_decoded, exported)
        ]
    (sample, sample_calls), (decoded, decoded_calls), (exported, calls) = timings
    rows.append(row(setting, "in-process PixelCNN.sample", sample, "s/batch", calls=sample_calls))
    rows.append(row(setting, "in-process sample + VQVAE.decode", decoded, "s/batch", calls=decoded_calls))
    rows.append(
        row(
            setting,
            "SavedModel `sample` signature (codes + images)",
            exported,
            "s/batch",
            calls=calls,
            gains={"in-process sample": sample / exported, "in-process sample+decode": decoded / exported},
            detail=f"same codes as in-process for seeds 1..{repeats}: asserted",
        )
    )


# ---------------------------------------------------------------------- report


def row(setting, variant, value, unit, calls=None, gains=None, detail=""):
    """One result: `gains` maps a baseline's name to how many times better this variant is."""
    return {
        "setting": setting,
        "variant": variant,
        "value": value,
        "unit": unit,
        "timed_calls": calls,
        "gains": gains or {},
        "detail": detail,
    }


def machine_description():
    """CPU model, cores, library versions and load average of this machine."""
    with open("/proc/cpuinfo") as cpuinfo:
        models = [line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")]
    return {
        "cpu": models[0] if models else "unknown",
        "logical_cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)),
        "python": sys.version.split()[0],
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "load_average_start": os.getloadavg(),
    }


def format_load(load_average):
    """`os.getloadavg()` as "1-min, 5-min, 15-min" with two decimals."""
    return ", ".join(f"{load:.2f}" for load in load_average) + " (1, 5, 15 min)"


def markdown_table(rows):
    """The rows as a Markdown table, one line per row."""
    lines = [
        "| setting | variant | value | gain vs baseline (>1 = better) | timed calls | note |",
        "|---|---|---|---|---|---|",
    ]
    for result in rows:
        value = result["value"]
        shown = f"{value:,.0f}" if value >= 100 else f"{value:.3g}"
        gains = "; ".join(f"{gain:.3g}x vs {name}" for name, gain in result["gains"].items()) or "-"
        lines.append(
            f"| {result['setting']} | {result['variant']} | {shown} {result['unit']} | {gains} | "
            f"{result['timed_calls'] or '-'} | {result['detail']} |"
        )
    return "\n".join(lines)


def main():
    """Runs every section, prints the machine and the table, and writes the JSON if asked."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run in under 2 minutes")
    parser.add_argument("--json", metavar="PATH", help="also write the machine, settings and rows here")
    parser.add_argument("--quantizer-worker", help=argparse.SUPPRESS)  # internal: one measuring subprocess
    args = parser.parse_args()
    if args.quantizer_worker:
        print(json.dumps(quantizer_worker(*json.loads(args.quantizer_worker))))
        return
    if args.json and not os.path.isdir(os.path.dirname(os.path.abspath(args.json))):
        parser.error(f"--json {args.json}: the folder does not exist; create it or choose another path")

    mode = "quick" if args.quick else "full"
    settings = SETTINGS[mode]
    machine = machine_description()
    print(
        f"# vqgen benchmark ({mode})\n\nCPU: {machine['cpu']}, {machine['logical_cores']} logical cores "
        f"({machine['usable_cores']} usable); Python {machine['python']}, "
        f"TensorFlow {machine['tensorflow']}, Keras {machine['keras']}; "
        f"load average at start {format_load(machine['load_average_start'])}",
        flush=True,
    )
    start = time.perf_counter()
    rows = []
    for section in (benchmark_quantizer, benchmark_training, benchmark_sampling, benchmark_saved_model):
        section_start = time.perf_counter()
        section(settings, rows)
        print(f"{section.__name__}: {time.perf_counter() - section_start:.0f} s", file=sys.stderr, flush=True)
    machine["load_average_end"] = os.getloadavg()
    wall_seconds = time.perf_counter() - start
    print(
        f"\n{markdown_table(rows)}\n\nWall time {wall_seconds:.0f} s; "
        f"load average at end {format_load(machine['load_average_end'])}"
    )
    if args.json:
        with open(args.json, "w") as stream:
            json.dump(
                {
                    "mode": mode,
                    "machine": machine,
                    "settings": settings,
                    "rows": rows,
                    "wall_seconds": wall_seconds,
                },
                stream,
                indent=2,
            )


if __name__ == "__main__":
    from results_file import run_and_record

    run_and_record(main, "benchmark", internal_flags=("--quantizer-worker",))
