"""The paper's size: 128x128x3 images -> 32x32 grids of K=512 codes, batch 32, both stages.

    python scripts/benchmark_paper_size.py                     # about 10-20 min on 2 busy cores
    python scripts/benchmark_paper_size.py --quick             # smoke run at 32x32 images
    python scripts/benchmark_paper_size.py --json paper.json   # also write the rows as JSON

Rows (random images and codes, random or freshly initialised weights; every ratio is between
variants timed in the same process, their steps interleaved round by round so the other jobs on
the machine slow each alike):

1. Stage-1 training images/s: vqgen's default VQ-VAE (K=512) in float32 and in mixed_bfloat16,
   against the public Keras example's simple recipe (`scripts/compare_keras_example.py`: conv
   32/64 stride 2, D=16, its K=128, no EMA) at the same 128x128x3 input, float32.
2. Achieved FLOP/s of the stage-1 train step: the forward pass's float operations counted by
   TensorFlow's profiler on the traced graph, times 3 for forward + backward (the usual
   estimate: each layer's backward costs about twice its forward), divided by the measured step
   time; against the machine's peak, derived two ways: (a) on paper, cores x clock (from
   /proc/cpuinfo) x 64 float32 FLOP per cycle (two AVX-512 FMA units: 2 x 16 lanes x 2) or
   x 2,048 bfloat16 FLOP per cycle (AMX: 1,024 multiply-adds per cycle); (b) measured, a 4096^3
   matmul in the same process.
3. Prior training grids/s on 32x32 grids of K=512, batch 32: the default PixelCNN (depth from
   the grid: 16 blocks of kernel 5, which see the whole grid) in float32 and mixed_bfloat16;
   the other covering choice, 8 blocks of kernel 9, in both; and the old default (5 blocks of
   kernel 5, which sees an 11x11 neighbourhood), for the cost of covering the grid
   (`--prior-rounds` interleaved rounds, 2 by default).
4. Sampling 16 grids of 32x32 with the cached sampler of each float32 prior that sees the whole
   grid (the default and 8 blocks of kernel 9), timed; the default prior's full
   compiled loop runs the whole network once per position (1,024 passes), so its time is
   extrapolated from one timed full forward pass of the 16 grids (x 1,024); `--full-loop` also
   runs it once (tracing included), for the measured ratio.
5. Profile of the stage-1 train step (`--sections profile`), in float32 and mixed_bfloat16: each
   part timed alone as a compiled function in the same process, interleaved with the whole step
   (`model.train_function`): the input pipeline (the embedded `photos` crops: shuffle, batch,
   uint8 -> float), encoder forward + backward, quantizer (nearest code, EMA update, restarts,
   statistics) forward + backward, decoder forward + backward with the reconstruction loss, the
   six running metrics, and Adam over every weight. The quantizer's previous nearest-code search
   (`||z||^2 - 2 z.E + ||E||^2` on the (N, K) product) and EMA sums (one-hot (N, K) matrix times
   z) are kept here only, patched into a second model, to time the whole step and the quantizer
   part before and after their change in the same process (median of 9 rounds).
6. Peak memory of each of the above (the priors at the default depth only): the growth of the
   resident high-water mark over the first step (or sampling call), tracing included, in a fresh
   subprocess that has built the model, and that process's peak.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import types

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
from benchmark import format_load, machine_description, markdown_table, peak_memory, reset_peak_memory, row  # noqa: E402
from compare_keras_example import keras_example_vqvae  # noqa: E402

import prior  # noqa: E402
from prior.pixelcnn import receptive_span, span_to_cover  # noqa: E402
from tf_distribute_helpers import sum_across_replicas  # noqa: E402
from vqgen import VQVAE  # noqa: E402
from vqgen.data import load_images, split_images, to_dataset  # noqa: E402
from vqgen.runs.precision import precision_policy  # noqa: E402

SETTINGS = {
    "full": dict(
        image_size=128,
        num_embeddings=512,
        batch=32,
        rounds=3,
        steps=1,
        prior_rounds=2,
        samples=16,
        profile_rounds=9,
    ),
    "quick": dict(
        image_size=32,
        num_embeddings=64,
        batch=8,
        rounds=2,
        steps=1,
        prior_rounds=1,
        samples=4,
        profile_rounds=2,
    ),
}
# Peak FLOP per cycle per core on paper: float32 by two AVX-512 FMA units, bfloat16 by AMX.
FLOP_PER_CYCLE = {"float32": 2 * 16 * 2, "bfloat16": 1024 * 2}
PRIOR_VARIANTS = {
    # name: (PixelCNN arguments, precision); the default depth is 16 blocks of kernel 5 on 32x32.
    "default depth float32": (dict(), "float32"),
    "default depth mixed_bfloat16": (dict(), "mixed_bfloat16"),
    "8 blocks of kernel 9 float32": (dict(num_layers=8, kernel_size=9), "float32"),
    "8 blocks of kernel 9 mixed_bfloat16": (dict(num_layers=8, kernel_size=9), "mixed_bfloat16"),
    "5 blocks of kernel 5 float32 (old default)": (dict(num_layers=5), "float32"),
}


# ---------------------------------------------------------------------- models and steps


def stage1_model(variant, settings):
    """`(model, precision)` for a stage-1 variant name, compiled as the workflow compiles it."""
    size = settings["image_size"]
    precision = "mixed_bfloat16" if variant.endswith("mixed_bfloat16") else "float32"
    with precision_policy(precision):
        if variant.startswith("Keras example"):
            model = keras_example_vqvae((size, size, 3))
        else:
            model = VQVAE(input_shape=(size, size, 3), num_embeddings=settings["num_embeddings"], seed=0)
        model.compile(optimizer=keras.optimizers.Adam(2e-3))
    return model


def stage1_variants():
    return ["vqgen default float32", "vqgen default mixed_bfloat16", "Keras example recipe float32"]


def prior_model(variant, settings):
    side = settings["image_size"] // 4
    arguments, precision = PRIOR_VARIANTS[variant]
    with precision_policy(precision):
        model = prior.PixelCNN(settings["num_embeddings"], (side, side), **arguments)
        model.compile(optimizer=keras.optimizers.Adam(1e-3))
    return model


def stage1_batch(settings):
    size = settings["image_size"]
    return tf.random.stateless_uniform([settings["batch"], size, size, 3], seed=[0, 1])


def codes_batch(settings, count=None):
    side = settings["image_size"] // 4
    shape = [count or settings["batch"], side, side]
    return tf.random.stateless_uniform(shape, seed=[0, 2], maxval=settings["num_embeddings"], dtype=tf.int32)


def train_step(model, batch):
    """A function running one compiled training step of `model` on `batch` (traced on first call)."""
    model.make_train_function()

    def step():
        logs = model.train_function(iter([(batch,)]))
        return float(logs["loss"])

    return step


def interleaved_seconds(steps, rounds, steps_per_round):
    """Median seconds per call of each of `steps` (name -> function), the calls interleaved by round."""
    for step in steps.values():
        step()  # tracing and warm-up
    timings = {name: [] for name in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            start = time.perf_counter()
            for _ in range(steps_per_round):
                step()
            timings[name].append((time.perf_counter() - start) / steps_per_round)
    return {name: statistics.median(values) for name, values in timings.items()}


# ---------------------------------------------------------------------- FLOPs and the machine's peak


def forward_flops(model, batch):
    """Float operations of one forward pass of `model` on `batch`, counted by TensorFlow's profiler."""
    from tensorflow.python.profiler import model_analyzer, option_builder

    forward = tf.function(lambda images: model(images, training=True))
    graph = forward.get_concrete_function(tf.TensorSpec(batch.shape, batch.dtype)).graph
    options = option_builder.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    return model_analyzer.profile(graph, options=options).total_float_ops


def paper_peak_flops(dtype):
    """Peak FLOP/s on paper: usable cores x clock (MHz from /proc/cpuinfo) x FLOP per cycle."""
    with open("/proc/cpuinfo") as cpuinfo:
        megahertz = max(float(line.split(":")[1]) for line in cpuinfo if line.startswith("cpu MHz"))
    return len(os.sched_getaffinity(0)) * megahertz * 1e6 * FLOP_PER_CYCLE[dtype]


def measured_matmul_flops(dtype, size=4096, repeats=3):
    """FLOP/s of a `size`^3 matmul in `dtype`, the best of `repeats` after a warm-up."""
    a = tf.random.stateless_normal([size, size], seed=[1, 2], dtype=tf.float32)
    a = tf.cast(a, dtype)
    matmul = tf.function(lambda x: tf.reduce_sum(tf.cast(tf.matmul(x, x), tf.float32)))
    matmul(a).numpy()
    best = min(_timed(lambda: matmul(a).numpy()) for _ in range(repeats))
    return 2 * size**3 / best


def _timed(call):
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


# ---------------------------------------------------------------------- the stage-1 step, part by part


def previous_nearest_codes(quantizer, flat_z):
    """The quantizer's nearest-code search before the profile: `||z||^2 - 2 z.E + ||E||^2`."""
    codebook = tf.convert_to_tensor(quantizer.codebook)
    distances = (
        tf.reduce_sum(tf.square(flat_z), axis=1, keepdims=True)
        - 2.0 * tf.matmul(flat_z, codebook, transpose_b=True)
        + tf.reduce_sum(tf.square(codebook), axis=1)[tf.newaxis, :]
    )  # (N, K)
    return tf.argmin(distances, axis=1, output_type="int32")


def previous_update_ema(quantizer, flat_z, flat_indices, counts):
    """The quantizer's EMA update before the profile: cluster sums as a one-hot (N, K) matmul."""
    one_hot = tf.one_hot(flat_indices, quantizer.num_embeddings, dtype="float32")  # (N, K)
    sums = sum_across_replicas(tf.matmul(one_hot, flat_z, transpose_a=True))  # (K, D)
    cluster_size = quantizer.decay * quantizer.ema_cluster_size + (1.0 - quantizer.decay) * counts
    embedding_sum = quantizer.decay * quantizer.ema_embedding_sum + (1.0 - quantizer.decay) * sums
    total = tf.reduce_sum(cluster_size)
    smoothed = (
        (cluster_size + quantizer.epsilon) / (total + quantizer.num_embeddings * quantizer.epsilon) * total
    )
    quantizer.ema_cluster_size.assign(cluster_size)
    quantizer.ema_embedding_sum.assign(embedding_sum)
    quantizer.codebook.assign(embedding_sum / smoothed[:, tf.newaxis])


def with_previous_quantizer(model):
    """`model` with its quantizer's two previous methods patched in (benchmark only)."""
    model.quantizer._nearest_codes = types.MethodType(previous_nearest_codes, model.quantizer)
    model.quantizer._update_ema = types.MethodType(previous_update_ema, model.quantizer)
    return model


def total(tensors):
    """One float32 scalar depending on every tensor, so a timed function returns after all of them."""
    return tf.add_n([tf.reduce_sum(tf.cast(tensor, "float32")) for tensor in tensors])


WHOLE_STEP = "whole train step"
QUANTIZER_PART = "quantizer forward + backward (nearest code, EMA, restarts, statistics)"
BEFORE = ", previous quantizer"


def step_parts(model, images, settings):
    """`{part: function}` running each part of `model`'s train step alone, compiled, on `images`."""
    size = settings["image_size"]
    train, _ = split_images(load_images(f"photos:{size}"), 0.1, seed=0)
    batches = iter(to_dataset(train, settings["batch"], shuffle=True, seed=0).repeat())
    latents = tf.constant(model.encoder(images))  # (B, h, w, D) in the compute dtype
    quantized = tf.constant(model.quantizer(latents))

    @tf.function
    def encoder():
        with tf.GradientTape() as tape:
            outputs = model.encoder(images, training=True)
            loss = total([outputs])
        return total(tape.gradient(loss, model.encoder.trainable_weights))

    @tf.function
    def quantizer():
        with tf.GradientTape() as tape:
            tape.watch(latents)
            result = model.quantizer.quantize_with_stats(latents, training=True)
            loss = total([result.quantized]) + result.loss
        return total([tape.gradient(loss, latents), *result.statistics.values()])

    @tf.function
    def decoder():
        with tf.GradientTape() as tape:
            tape.watch(quantized)
            reconstructions = tf.cast(model.decoder(quantized, training=True), "float32")
            loss = tf.reduce_mean(tf.square(reconstructions - images))
        return total(tape.gradient(loss, model.decoder.trainable_weights + [quantized]))

    scalars = {tracker.name: tf.constant(1.0) for tracker in model.trackers}
    metrics = tf.function(lambda: total(model._update_trackers(scalars).values()))
    gradients = [tf.ones_like(weight) * 1e-9 for weight in model.trainable_weights]

    @tf.function
    def optimizer():
        model.optimizer.apply_gradients(zip(gradients, model.trainable_weights))
        return model.optimizer.iterations

    return {
        "input pipeline (photos crops: shuffle, batch, uint8 -> float)": lambda: next(batches).numpy(),
        "encoder forward + backward": lambda: encoder().numpy(),
        QUANTIZER_PART: lambda: quantizer().numpy(),
        "decoder forward + backward, reconstruction loss": lambda: decoder().numpy(),
        "metrics (six running means)": lambda: metrics().numpy(),
        "optimizer (Adam over every weight)": lambda: optimizer().numpy(),
    }


def benchmark_profile(settings, rows):
    size, batch, rounds = settings["image_size"], settings["batch"], settings["profile_rounds"]
    images = stage1_batch(settings)
    for precision in ("float32", "mixed_bfloat16"):
        setting = f"stage-1 step profile {size}x{size}x3, batch {batch}, {precision}"
        model = stage1_model(f"vqgen default {precision}", settings)
        previous = with_previous_quantizer(stage1_model(f"vqgen default {precision}", settings))
        functions = {WHOLE_STEP: train_step(model, images), WHOLE_STEP + BEFORE: train_step(previous, images)}
        functions.update(step_parts(model, images, settings))
        functions[QUANTIZER_PART + BEFORE] = step_parts(previous, images, settings)[QUANTIZER_PART]
        seconds = interleaved_seconds(functions, rounds, settings["steps"])
        whole = seconds[WHOLE_STEP]
        parts = sum(value for name, value in seconds.items() if not name.startswith(("whole", "input")))
        parts -= seconds[QUANTIZER_PART + BEFORE]
        for name, value in seconds.items():
            gains = {"previous quantizer": seconds[name + BEFORE] / value} if name + BEFORE in seconds else {}
            if name.startswith("whole"):
                detail = f"{1000 * value:.0f} ms per step"
                if name == WHOLE_STEP:
                    detail += f"; the parts but the input add up to {1000 * parts:.0f} ms"
                rows.append(row(setting, name, batch / value, "images/s", rounds, gains, detail))
                continue
            detail = f"{100 * value / whole:.1f}% of the whole step"
            if name.startswith("input"):
                detail += " (prefetched, so it overlaps the step in fit)"
            rows.append(row(setting, name, 1000 * value, "ms", rounds, gains, detail))


# ---------------------------------------------------------------------- peak memory (subprocesses)


def memory_worker(kind, variant, settings):
    """Subprocess body: peak resident memory growth over one step of a variant, after tracing."""
    if kind == "stage1":
        step = train_step(stage1_model(variant, settings), stage1_batch(settings))
    elif kind == "prior":
        step = train_step(prior_model(variant, settings), codes_batch(settings))
    else:  # cached sampling with the default prior
        model = prior_model("default depth float32", settings)

        def step():
            model.sample(settings["samples"], seed=0, method="cached")

    # The first call traces, so the peak includes tracing; measured from before it, since a second
    # call reuses memory the allocator kept from the first and would show almost no growth.
    baseline = reset_peak_memory()
    step()
    return {"peak_mebibytes": peak_memory() - baseline, "process_peak_mebibytes": peak_memory()}


def run_memory_worker(kind, variant, settings):
    command = [
        sys.executable,
        os.path.abspath(__file__),
        "--memory-worker",
        json.dumps([kind, variant, settings]),
    ]
    finished = subprocess.run(command, capture_output=True, text=True)
    if finished.returncode != 0:
        raise RuntimeError(f"memory worker {kind} {variant} failed:\n{finished.stderr[-3000:]}")
    return json.loads(finished.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------- sections


def benchmark_stage1(settings, rows):
    size, batch = settings["image_size"], settings["batch"]
    setting = f"stage-1 training {size}x{size}x3 -> {size // 4}x{size // 4}, batch {batch}"
    images = stage1_batch(settings)
    models = {variant: stage1_model(variant, settings) for variant in stage1_variants()}
    seconds = interleaved_seconds(
        {variant: train_step(model, images) for variant, model in models.items()},
        settings["rounds"],
        settings["steps"],
    )
    baseline = "Keras example recipe float32"
    for variant, value in seconds.items():
        gains = {} if variant == baseline else {baseline: seconds[baseline] / value}
        if variant.endswith("mixed_bfloat16"):
            gains["vqgen default float32"] = seconds["vqgen default float32"] / value
        detail = f"K={models[variant].num_embeddings}; median of {settings['rounds']} rounds"
        rows.append(row(setting, variant, batch / value, "images/s", settings["rounds"], gains, detail))

    # Achieved FLOP/s of vqgen's step against the machine's peak.
    flops_per_step = 3 * forward_flops(models["vqgen default float32"], images)
    matmul = {dtype: measured_matmul_flops(dtype) for dtype in ("float32", "bfloat16")}
    for variant, dtype in (
        ("vqgen default float32", "float32"),
        ("vqgen default mixed_bfloat16", "bfloat16"),
    ):
        achieved = flops_per_step / seconds[variant]
        rows.append(
            row(
                "stage-1 train step FLOP/s",
                variant,
                achieved / 1e9,
                "GFLOP/s",
                settings["rounds"],
                {},
                f"{flops_per_step / 1e9:.1f} GFLOP per step (3 x profiled forward); "
                f"{100 * achieved / paper_peak_flops(dtype):.1f}% of the {dtype} peak on paper "
                f"({paper_peak_flops(dtype) / 1e9:,.0f} GFLOP/s), "
                f"{100 * achieved / matmul[dtype]:.1f}% of a measured {dtype} 4096^3 matmul "
                f"({matmul[dtype] / 1e9:,.0f} GFLOP/s)",
            )
        )


def benchmark_prior(settings, rows):
    side, batch = settings["image_size"] // 4, settings["batch"]
    setting = f"prior training {side}x{side}, K={settings['num_embeddings']}, batch {batch}"
    codes = codes_batch(settings)
    models = {variant: prior_model(variant, settings) for variant in PRIOR_VARIANTS}
    seconds = interleaved_seconds(
        {variant: train_step(model, codes) for variant, model in models.items()},
        settings["prior_rounds"],
        settings["steps"],
    )
    baseline = "default depth float32"
    for variant, value in seconds.items():
        gains = {} if variant == baseline else {baseline: seconds[baseline] / value}
        model = models[variant]
        covers = receptive_span(model.num_layers, model.kernel_size) >= span_to_cover(model.grid_shape)
        detail = f"{model.num_layers} blocks of kernel {model.kernel_size}; " + (
            "sees the whole grid" if covers else "does not see the whole grid"
        )
        rows.append(row(setting, variant, batch / value, "grids/s", settings["prior_rounds"], gains, detail))

    # Sampling: the cached sampler of every float32 variant that sees the whole grid, timed; the
    # default prior's full loop extrapolated from one forward pass.
    count = settings["samples"]
    sampling = f"sampling {count} grids {side}x{side}, K={settings['num_embeddings']}"
    cached_seconds = {}
    for variant, model in models.items():
        covers = receptive_span(model.num_layers, model.kernel_size) >= span_to_cover(model.grid_shape)
        if covers and PRIOR_VARIANTS[variant][1] == "float32":
            model.sample(count, seed=0, method="cached")  # tracing and XLA compilation
            cached_seconds[variant] = statistics.median(
                _timed(lambda seed=seed, model=model: model.sample(count, seed=seed, method="cached"))
                for seed in range(1, 4)
            )
    model = models[baseline]
    cached = cached_seconds[baseline]
    grids = codes_batch(settings, count)
    forward = tf.function(lambda codes: model(codes))
    forward(grids).numpy()
    one_pass = statistics.median(_timed(lambda: forward(grids).numpy()) for _ in range(3))
    full = one_pass * side * side
    if settings.get("full_loop"):  # one call, tracing included: minutes of tracing would not show
        run = _timed(lambda: model.sample(count, seed=0, method="full"))
        rows.append(
            row(
                sampling,
                "full compiled loop (run once)",
                run,
                "s",
                1,
                {"extrapolation": full / run},
                f"one call, tracing included; cached sampler {run / cached:.0f}x faster",
            )
        )
    rows.append(
        row(
            sampling,
            "full compiled loop (extrapolated)",
            full,
            "s",
            3,
            {},
            f"{side * side} x one timed forward pass ({one_pass:.3f} s); not run",
        )
    )
    rows.append(
        row(sampling, "cached", cached, "s", 3, {"full (extrapolated)": full / cached}, "default prior")
    )
    for variant, value in cached_seconds.items():
        if variant != baseline:
            rows.append(
                row(sampling, f"cached, {variant}", value, "s", 3, {"default prior": cached / value}, "")
            )


def benchmark_memory(settings, rows):
    jobs = [("stage1", variant) for variant in stage1_variants()]
    jobs += [("prior", variant) for variant in PRIOR_VARIANTS if variant.startswith("default")]
    jobs += [("sampling", "cached, default prior")]
    for kind, variant in jobs:
        what = {
            "stage1": "one stage-1 train step",
            "prior": "one prior train step",
            "sampling": "one cached sampling call",
        }
        memory = run_memory_worker(kind, variant, settings)
        rows.append(
            row(
                "peak memory growth",
                variant,
                memory["peak_mebibytes"],
                "MiB",
                1,
                {},
                f"over {what[kind]} (tracing included) in a fresh process that built its model; "
                f"process peak {memory['process_peak_mebibytes']:,.0f} MiB",
            )
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="32x32 images, K=64: a smoke run")
    parser.add_argument("--json", metavar="PATH", help="also write the machine, settings and rows here")
    parser.add_argument(
        "--sections",
        default="stage1,prior,memory,profile",
        help="comma-separated sections to run: stage1, prior, memory, profile (default: all)",
    )
    parser.add_argument(
        "--prior-variants",
        default=",".join(PRIOR_VARIANTS),
        help="comma-separated prior variants to time and measure (default: all)",
    )
    parser.add_argument(
        "--prior-rounds",
        type=int,
        help="interleaved rounds of the prior's train steps (default: 2; quick: 1)",
    )
    parser.add_argument(
        "--full-loop",
        action="store_true",
        help="also run the default prior's full sampling loop once (about 25 min at 32x32 on 2 quiet cores)",
    )
    parser.add_argument("--memory-worker", help=argparse.SUPPRESS)  # internal: one measuring subprocess
    args = parser.parse_args()
    if args.memory_worker:
        print(json.dumps(memory_worker(*json.loads(args.memory_worker))))
        return
    mode = "quick" if args.quick else "full"
    settings = dict(SETTINGS[mode])
    if args.prior_rounds is not None:
        settings["prior_rounds"] = args.prior_rounds
    settings["full_loop"] = args.full_loop
    machine = machine_description()
    print(
        f"# vqgen at the paper's size ({mode})\n\n"
        f"CPU: {machine['cpu']}, {machine['usable_cores']} usable cores; "
        f"TensorFlow {machine['tensorflow']}, Keras {machine['keras']}; "
        f"load average at start {format_load(machine['load_average_start'])}",
        flush=True,
    )
    start = time.perf_counter()
    rows = []
    chosen = args.prior_variants.split(",")
    for name in [name for name in PRIOR_VARIANTS if name not in chosen]:
        del PRIOR_VARIANTS[name]
    known = {
        "stage1": benchmark_stage1,
        "prior": benchmark_prior,
        "memory": benchmark_memory,
        "profile": benchmark_profile,
    }
    sections = [known[name] for name in args.sections.split(",")]
    for section in sections:
        section_start = time.perf_counter()
        section(settings, rows)
        print(f"{section.__name__}: {time.perf_counter() - section_start:.0f} s", file=sys.stderr, flush=True)
        print(markdown_table(rows[-3:]), file=sys.stderr, flush=True)
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

    run_and_record(main, "benchmark_paper_size", internal_flags=("--memory-worker",))
