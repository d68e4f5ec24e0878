"""Data-parallel training under tf.distribute matches single-device training."""

import json
import os
import socket
import subprocess
import sys
import textwrap

import pytest

MIRRORED_SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    from vqgen import VQVAE

    images = np.random.default_rng(0).uniform(size=(16, 8, 8, 1)).astype("float32")

    def one_step(strategy, ema):
        with strategy.scope():
            keras.utils.set_random_seed(1)
            model = VQVAE(input_shape=(8, 8, 1), num_embeddings=8, embedding_dim=4, hidden_channels=8,
                          residual_channels=4, num_residual_blocks=1, ema=ema, init_from_data=False,
                          restart_after_steps=5, seed=1)
            model.compile(optimizer=keras.optimizers.SGD(0.5))
        before = model.quantizer.codebook.numpy().copy()
        model.fit(tf.data.Dataset.from_tensor_slices(images).batch(16), epochs=1, verbose=0, shuffle=False)
        assert np.max(np.abs(model.quantizer.codebook.numpy() - before)) > 1e-4  # the step moved it
        return [v.numpy() for v in model.weights]

    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    assert mirrored.num_replicas_in_sync == 2
    for ema in (True, False):
        single, distributed = one_step(tf.distribute.get_strategy(), ema), one_step(mirrored, ema)
        worst = max(float(np.max(np.abs(a - b))) for a, b in zip(single, distributed))
        print("ema" if ema else "gradient", "max difference", worst)
        assert worst < 1e-5, worst
    """
)


@pytest.mark.slow
def test_mirrored_step_equals_single_device_step_with_ema_and_gradient_codebooks():
    result = subprocess.run([sys.executable, "-c", MIRRORED_SCRIPT], capture_output=True, text=True,
                            timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "ema max difference" in result.stdout and "gradient max difference" in result.stdout
