"""Same seed twice, with TensorFlow's op determinism: identical codebooks, codes and samples."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest

# One run in a fresh process (op determinism is process-wide): argv = data, run folder, results file.
SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    import tensorflow as tf
    tf.config.experimental.enable_op_determinism()
    from vqgen.runs.code_shards import CodeShards
    from vqgen.runs.model_files import load_model_file
    from vqgen.runs.sample_images import sample_images
    from vqgen.runs.train_prior import train_prior
    from vqgen.runs.train_vqvae import train_vqvae
    from vqgen.models.vqvae import VQVAE

    data, run, out = sys.argv[1:]
    tiny = dict(epochs=1, num_embeddings=16, embedding_dim=4, hidden_channels=8, residual_channels=4,
                num_residual_blocks=1, batch_size=32, restart_after_steps=2)
    train_vqvae(run, source=data, seed=11, verbose=0, **tiny)
    train_prior(run, epochs=1, num_layers=2, filters=8, verbose=0)
    _, samples = sample_images(run, num=4, seed=5)
    codebook = load_model_file(f"{run}/vqvae.keras", VQVAE).quantizer.codebook.numpy()
    codes = CodeShards.open(f"{run}/codes").arrays("train")[0]
    np.savez(out, codebook=codebook, codes=codes, samples=samples)
    """
)


@pytest.mark.slow
def test_same_seed_gives_identical_codebooks_codes_and_samples(tiny_digits, tmp_path):
    # Two runs side by side, each in its own process, as two `vqgen train --deterministic` would be.
    runs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                SCRIPT,
                tiny_digits,
                str(tmp_path / f"run{i}"),
                str(tmp_path / f"{i}.npz"),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    try:
        for process in runs:
            _, stderr = process.communicate(timeout=600)
            assert process.returncode == 0, stderr[-2000:]
    finally:
        for process in runs:  # none is left running after a failure
            if process.poll() is None:
                process.kill()
                process.wait()
    first, second = (np.load(tmp_path / f"{i}.npz") for i in range(2))
    for name in ("codebook", "codes", "samples"):
        np.testing.assert_array_equal(first[name], second[name], err_msg=name)
    assert len(np.unique(first["codes"])) > 1  # the compared codes are not one constant
