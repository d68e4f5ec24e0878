"""Stage 1 at the paper's size under each Keras precision policy: speed and held-out PSNR.

Trains vqgen's default VQ-VAE with K=512 on the embedded 128x128 `photos` crops (the same 10%
held out, the same seed and data order) once per policy, in one process with the epochs of the
policies interleaved, and prints training images/s (epochs after the first, which includes
tracing) and held-out PSNR.

    python scripts/compare_precision.py                          # 6 epochs, batch 32
    python scripts/compare_precision.py --epochs 2 --policies float32 mixed_bfloat16
"""

import argparse
import os
import time

import keras
import numpy as np

from vqgen import VQVAE
from vqgen.data import load_images, split_images, to_dataset


def held_out_psnr(model, images):
    originals = images.astype("float32") / 255.0
    reconstructions = model.reconstruct(images)
    mse = np.mean((reconstructions - originals) ** 2, axis=(1, 2, 3))
    return float(np.mean(-10.0 * np.log10(mse + 1e-10)))


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--data", default="photos")
    parser.add_argument("--policies", nargs="+", default=["float32", "mixed_bfloat16", "mixed_float16"])
    args = parser.parse_args()
    train, validation = split_images(load_images(args.data), 0.1, seed=0)
    print(f"load average {os.getloadavg()}; {len(train)} train, {len(validation)} held out", flush=True)
    # One model per policy (a layer keeps the policy it was built under); epochs interleaved so
    # the other jobs on the machine slow every policy alike.
    models, seconds = {}, {policy: [] for policy in args.policies}
    for policy in args.policies:
        keras.mixed_precision.set_global_policy(policy)
        keras.utils.set_random_seed(0)
        models[policy] = VQVAE(input_shape=train.image_shape, num_embeddings=512, seed=0)
        models[policy].compile(optimizer=keras.optimizers.Adam(2e-3))
    keras.mixed_precision.set_global_policy("float32")
    for epoch in range(args.epochs):
        for policy, model in models.items():
            batches = to_dataset(train, args.batch_size, shuffle=True, seed=epoch)
            start = time.perf_counter()
            model.fit(batches, epochs=1, verbose=0)
            seconds[policy].append(time.perf_counter() - start)
        print(
            f"epoch {epoch + 1}: " + ", ".join(f"{p} {s[-1]:.1f} s" for p, s in seconds.items()), flush=True
        )
    for policy, model in models.items():
        steady = seconds[policy][1:] or seconds[policy]
        print(
            f"{policy:16s} {len(train) * len(steady) / sum(steady):7.1f} images/s (epochs 2+)  "
            f"held-out PSNR {held_out_psnr(model, validation.images):.2f} dB  load {os.getloadavg()[0]:.2f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
