"""PixelCNN training under tf.distribute matches single-device training."""

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
            model = prior.PixelCNN(6, (4, 4), num_classes=3, num_layers=2, filters=8, kernel_size=3)
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


@pytest.mark.slow
def test_mirrored_step_equals_single_device_step():
    result = subprocess.run(
        [sys.executable, "-c", MIRRORED_SCRIPT], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
