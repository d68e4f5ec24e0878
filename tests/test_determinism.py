"""Same seed twice, with TensorFlow's op determinism: identical codebooks, codes and samples."""

import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    import tensorflow as tf
    tf.config.experimental.enable_op_determinism()
    from vqgen.data import load_images
    from vqgen.runs.code_shards import CodeShards
    from vqgen.runs.model_files import load_model_file
    from vqgen.runs.sample_images import sample_images
    from vqgen.runs.train_prior import train_prior
    from vqgen.runs.train_vqvae import train_vqvae
    from vqgen.models.vqvae import VQVAE

    folder = sys.argv[1]
    digits = load_images("digits")
    np.savez(f"{folder}/data.npz", images=digits.images[:96], labels=digits.labels[:96])
    tiny = dict(epochs=1, num_embeddings=16, embedding_dim=4, hidden_channels=8, residual_channels=4,
                num_residual_blocks=1, batch_size=32, restart_after_steps=2)
    results = []
    for attempt in range(2):
        run = f"{folder}/run{attempt}"
        train_vqvae(run, source=f"{folder}/data.npz", seed=11, verbose=0, **tiny)
        train_prior(run, epochs=1, num_layers=2, filters=8, verbose=0)
        _, samples = sample_images(run, num=4, seed=5)
        codebook = load_model_file(f"{run}/vqvae.keras", VQVAE).quantizer.codebook.numpy()
        codes = CodeShards.open(f"{run}/codes").arrays("train")[0]
        results.append((codebook, codes, samples))
    for name, first, second in zip(("codebook", "codes", "samples"), *results):
        assert np.array_equal(first, second), name
    print("identical")
    """
)


@pytest.mark.slow
def test_same_seed_gives_identical_codebooks_codes_and_samples(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path)], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "identical" in result.stdout
