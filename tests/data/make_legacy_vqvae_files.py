"""Writes `legacy_vqvae_files.tar.xz`: tiny VQ-VAEs saved by the code of commit 94ec57f.

They are the reference for `tests/test_legacy_vqvae_files.py`: models saved before quantizers were
objects (FSQ's running statistics were then the model's own variables) must load into today's code
and code and decode exactly as they did. Rerunning this script with today's code would only record
today's format, so it is kept to show how the files were made, not to be rerun. The archive holds
`legacy_{vq,fsq,rvq}.keras`, `legacy_fsq.weights.h5` (a checkpoint as a run writes it; FSQ is the
model whose variables moved) and `legacy_outputs.npz` (the images, and each model's codes and
decoded images); xz keeps it small:

    git worktree add /tmp/start 94ec57f && cd /tmp/start && python tests/data/make_legacy_vqvae_files.py
"""

import os
import tarfile
import tempfile

import keras
import numpy as np

from vqgen import VQVAE
from vqgen.runs.model_files import weights_file_bytes

HERE = os.path.dirname(os.path.abspath(__file__))
# One tiny model per quantizer; the flat keyword arguments are the old constructor's.
KINDS = {
    "vq": dict(quantizer="vq"),
    "fsq": dict(quantizer="fsq", levels=[5, 4, 3], latent_decay=0.8),
    "rvq": dict(quantizer="rvq", num_quantizers=2),
}
TINY = dict(
    input_shape=(8, 8, 1),
    num_embeddings=8,
    embedding_dim=4,
    downsample=4,
    hidden_channels=8,
    residual_channels=4,
    num_residual_blocks=1,
    seed=0,
)


def write_files(folder):
    rng = np.random.default_rng(0)
    images = rng.uniform(size=(4, 8, 8, 1)).astype("float32")
    train = rng.uniform(size=(16, 8, 8, 1)).astype("float32")
    outputs = {"images": images}
    for kind, arguments in KINDS.items():
        keras.utils.set_random_seed(0)
        model = VQVAE(**TINY, **arguments)
        model.compile(optimizer=keras.optimizers.Adam(1e-2))
        model.fit(train, epochs=1, batch_size=8, verbose=0, shuffle=False)  # two steps
        model.save(os.path.join(folder, f"legacy_{kind}.keras"))
        if kind == "fsq":
            with open(os.path.join(folder, f"legacy_{kind}.weights.h5"), "wb") as stream:
                stream.write(weights_file_bytes(model))  # as a run's checkpoints and backups are written
        codes = model.encode(images)
        outputs[f"{kind}_codes"] = codes
        outputs[f"{kind}_decoded"] = model.decode(codes)
    np.savez(os.path.join(folder, "legacy_outputs.npz"), **outputs)


def main():
    with tempfile.TemporaryDirectory() as folder:
        write_files(folder)
        with tarfile.open(os.path.join(HERE, "legacy_vqvae_files.tar.xz"), "w:xz", preset=9) as archive:
            for name in sorted(os.listdir(folder)):
                archive.add(os.path.join(folder, name), arcname=name)


if __name__ == "__main__":
    main()
