"""Training of each prior (PixelCNN, Transformer, MaskGIT) under tf.distribute matches single-device training,
and MaskGIT's replicas draw their training masks independently."""

import json
import subprocess
import sys
import textwrap

import pytest

# The models compared, without dropout (the replicas' dropout masks differ from one device's); MaskGIT
# with `FixedMaskGIT`'s masks, which depend on the codes only, and with its own random masks and
# dropped labels (each replica's rows of one draw for the global batch, so one device's draws).
MODELS = {
    "pixelcnn": "prior.PixelCNN(6, (4, 4), num_classes=3, num_layers=2, filters=8, kernel_size=3)",
    "transformer": "prior.Transformer(6, (4, 4), num_classes=3, num_layers=2, hidden_dim=8, num_heads=2, "
    "intermediate_dim=16, dropout=0.0)",
    "maskgit": "FixedMaskGIT(6, (4, 4), num_classes=3, num_layers=2, hidden_dim=8, num_heads=2, "
    "intermediate_dim=16, dropout=0.0)",
    # Its own random masks and label dropout: each replica's rows of one draw for the global batch.
    "maskgit_random_masks": "prior.MaskGIT(6, (4, 4), num_classes=3, label_dropout=0.5, num_layers=2, "
    "hidden_dim=8, num_heads=2, intermediate_dim=16, dropout=0.0)",
}

# Two logical CPUs must be configured before TensorFlow initialises its devices, so the comparison
# runs in a fresh interpreter, one for both models; it prints one JSON line per model.
MIRRORED_SCRIPT = textwrap.dedent(
    """
    import json
    import numpy as np
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    import prior

    rng = np.random.default_rng(0)
    codes = rng.integers(0, 6, size=(8, 4, 4)).astype("int32")
    labels = rng.integers(0, 3, size=8).astype("int32")

    # MaskGIT masking the codes below 3: masks that do not depend on how the batch is split, and masked
    # counts that differ between the two halves of the batch (the loss is a mean over all masked codes).
    class FixedMaskGIT(prior.MaskGIT):

        def _masked_batch(self, data):
            codes = data["codes"]
            mask = codes < 3
            inputs = {**data, "codes": tf.where(mask, self.mask_id, codes)}
            return inputs, (codes, mask), None

    def one_step(strategy, make_model):
        with strategy.scope():
            keras.utils.set_random_seed(1)
            model = make_model()
            model.build()
            model.compile(optimizer=keras.optimizers.SGD(0.5))
        data = tf.data.Dataset.from_tensor_slices({"codes": codes, "labels": labels}).batch(8)
        logs = model.fit(data, epochs=1, verbose=0).history
        metric = "masked_bits_per_code" if isinstance(model, prior.MaskGIT) else "bits_per_code"
        return [v.numpy() for v in model.weights], logs["loss"][0], logs[metric][0]

    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    assert mirrored.num_replicas_in_sync == 2
    for kind, make_model in MODEL_FACTORIES.items():
        single = one_step(tf.distribute.get_strategy(), make_model)
        distributed = one_step(mirrored, make_model)
        worst = max(float(np.max(np.abs(a - b))) for a, b in zip(single[0], distributed[0]))
        row = {"kind": kind, "worst": worst, "single": single[1:], "distributed": distributed[1:]}
        print(json.dumps(row))

    # MaskGIT's own random masks, label dropout and dropout, drawn in one replicated step from two
    # identical halves of a batch
    with mirrored.scope():
        maskgit = prior.MaskGIT(
            6, (4, 4), num_classes=3, label_dropout=0.5, num_layers=1, hidden_dim=8, num_heads=2,
            intermediate_dim=16, dropout=0.5,
        )
    same_halves = {"codes": np.concatenate([codes, codes]), "labels": np.concatenate([labels, labels])}
    halves = tf.data.Dataset.from_tensor_slices(same_halves).batch(16)
    batches = mirrored.experimental_distribute_dataset(halves)

    def draws(batch):
        masked_inputs, (_, mask), _ = maskgit._masked_batch(batch)
        kept = maskgit.transformer_blocks[0].dropout_layer(tf.ones([8, 16, 8]), training=True)
        return mask, maskgit._split_inputs(masked_inputs, training=True)[1], kept

    replicated = tf.function(lambda batch: mirrored.run(draws, args=(batch,)))
    results = [mirrored.experimental_local_results(value) for value in replicated(next(iter(batches)))]
    row = {"kind": "replica_draws"}
    for name, (first, second) in zip(["masks", "labels", "dropout"], results):
        row[f"{name}_identical"] = bool(np.array_equal(first, second))
    print(json.dumps(row))
    """
)


@pytest.fixture(scope="module")
def mirrored_against_single():
    """`{kind: {"worst": max weight difference, "single"/"distributed": [loss, bits_per_code]}}`
    after one step of each model on one device and under MirroredStrategy over two logical CPUs."""
    factories = ", ".join(f"{kind!r}: lambda: {source}" for kind, source in MODELS.items())
    script = MIRRORED_SCRIPT.replace("MODEL_FACTORIES", "{" + factories + "}")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    rows = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    return {row["kind"]: row for row in rows}


@pytest.mark.slow
@pytest.mark.parametrize("kind", sorted(MODELS))
def test_mirrored_step_equals_single_device_step(mirrored_against_single, kind):
    result = mirrored_against_single[kind]
    assert result["worst"] < 1e-5, result
    for single, distributed in zip(result["single"], result["distributed"]):  # loss, (masked) bits per code
        assert abs(single - distributed) < 1e-5, result


@pytest.mark.slow
@pytest.mark.parametrize("draws", ["masks", "labels", "dropout"])
def test_maskgit_replicas_draw_different_masks_dropped_labels_and_dropout(mirrored_against_single, draws):
    # Each replica got the same 8 grids and labels (and the block's dropout the same ones): with the
    # same draws they would mask the same positions, drop the same labels (label dropout 0.5) and
    # zero the same activations (dropout 0.5).
    assert not mirrored_against_single["replica_draws"][f"{draws}_identical"]
