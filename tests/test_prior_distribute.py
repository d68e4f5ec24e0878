"""Training of either prior (PixelCNN, Transformer) under tf.distribute matches single-device training."""

import subprocess
import sys
import textwrap

import pytest

# Two logical CPUs must be configured before TensorFlow initialises its
# devices, so the comparison runs in a fresh interpreter.
MIRRORED_SCRIPT = textwrap.dedent(
    """
    import numpy as np
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    import prior

    rng = np.random.default_rng(0)
    codes = rng.integers(0, 6, size=(8, 4, 4)).astype("int32")
    labels = rng.integers(0, 3, size=8).astype("int32")

    def one_step(strategy):
        with strategy.scope():
            keras.utils.set_random_seed(1)
            model = MODEL
            model.build()
            model.compile(optimizer=keras.optimizers.SGD(0.5))
        data = tf.data.Dataset.from_tensor_slices({"codes": codes, "labels": labels}).batch(8)
        logs = model.fit(data, epochs=1, verbose=0).history
        return [v.numpy() for v in model.weights], logs["loss"][0], logs["bits_per_code"][0]

    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    assert mirrored.num_replicas_in_sync == 2
    single, distributed = one_step(tf.distribute.get_strategy()), one_step(mirrored)
    worst = max(float(np.max(np.abs(a - b))) for a, b in zip(single[0], distributed[0]))
    print("max weight difference", worst, "losses", single[1], distributed[1])
    assert worst < 1e-5, worst
    assert abs(single[1] - distributed[1]) < 1e-5 and abs(single[2] - distributed[2]) < 1e-5
    """
)


# The model each run builds; the Transformer without dropout, whose masks differ per replica.
MODELS = {
    "pixelcnn": "prior.PixelCNN(6, (4, 4), num_classes=3, num_layers=2, filters=8, kernel_size=3)",
    "transformer": "prior.Transformer(6, (4, 4), num_classes=3, num_layers=2, hidden_dim=8, num_heads=2, "
    "intermediate_dim=16, dropout=0.0)",
}


@pytest.mark.slow
@pytest.mark.parametrize("kind", sorted(MODELS))
def test_mirrored_step_equals_single_device_step(kind):
    script = MIRRORED_SCRIPT.replace("MODEL", MODELS[kind])
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
