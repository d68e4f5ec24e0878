"""The stage trainer: the non-finite guard keeps the last good epoch; a rerun resumes from it; both
stages write metrics, checkpoints and TensorBoard logs through it; changed options are refused."""

import csv
import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from vqgen.data import epoch_batches
from vqgen.runs.callbacks import EpochBackup
from vqgen.runs.run_folder import RunFolder
from vqgen.runs.stage_trainer import check_resumed_settings, train_stage


def small_model():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
    return model


def arrays(target_scale=1.0):
    x = np.random.default_rng(0).normal(size=(32, 3)).astype("float32")
    return x, x[:, :1] * target_scale


def batches(epochs, target_scale=1.0):
    return lambda first_epoch: epoch_batches(arrays(target_scale), 8, 0, first_epoch, epochs)


def data():
    return tf.data.Dataset.from_tensor_slices(arrays()).batch(8)


def test_non_finite_loss_stops_with_epoch_and_step_and_keeps_the_last_good_state(tmp_path):
    run = RunFolder(tmp_path)
    backup = run.backup_path("vqvae")
    model = small_model()
    train_stage(run, "vqvae", model, batches(1), data(), 1, verbose=0)
    good = [w.copy() for w in model.get_weights()]
    with pytest.raises(ValueError, match=r"became (inf|nan) at epoch 2, step 1"):
        train_stage(run, "vqvae", model, batches(3, target_scale=np.inf), data(), 3, verbose=0)
    with open(os.path.join(backup, "epoch.json")) as stream:
        assert json.load(stream)["epochs_completed"] == 1
    fresh = small_model()
    train_stage(run, "vqvae", fresh, batches(1), data(), 1, verbose=0)  # nothing left to run
    for expected, restored in zip(good, fresh.get_weights()):
        np.testing.assert_array_equal(expected, restored)


def test_rerun_continues_from_the_backup_and_records_each_epoch_once(tmp_path):
    run = RunFolder(tmp_path)
    metrics = run.metrics_path("vqvae")
    first = small_model()
    train_stage(run, "vqvae", first, batches(2), data(), 2, verbose=0)
    second = small_model()
    history = train_stage(run, "vqvae", second, batches(4), data(), 4, verbose=0)
    assert len(history.history["loss"]) == 2  # epochs 3 and 4 only
    with open(metrics, newline="") as stream:
        assert [int(row["epoch"]) for row in csv.DictReader(stream)] == [1, 2, 3, 4]


def test_each_epoch_order_depends_only_on_seed_and_epoch():
    values = np.arange(11)
    everything, steps = epoch_batches(values, 4, 7, 0, 3)
    assert steps == 3
    epochs = np.concatenate([b.numpy() for b in everything]).reshape(3, 11)
    for epoch in range(3):
        assert sorted(epochs[epoch]) == list(range(11))  # a permutation
    resumed, _ = epoch_batches(values, 4, 7, 2, 3)
    np.testing.assert_array_equal(np.concatenate([b.numpy() for b in resumed]), epochs[2])
    assert not np.array_equal(epochs[0], epochs[1])
    other_seed, _ = epoch_batches(values, 4, 8, 0, 1)
    assert not np.array_equal(np.concatenate([b.numpy() for b in other_seed]), epochs[0])


def test_resuming_under_a_distribution_strategy_restores_the_weights(tmp_path):
    run = RunFolder(tmp_path)
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    with strategy.scope():
        first = small_model()
    train_stage(run, "vqvae", first, batches(1), data(), 1, verbose=0)
    trained = [w.copy() for w in first.get_weights()]
    with strategy.scope():
        resumed = small_model()  # fresh random weights, restored inside the strategy
    assert not np.array_equal(resumed.get_weights()[0], trained[0])
    history = train_stage(run, "vqvae", resumed, batches(1), data(), 1, verbose=0)
    assert history.history == {}  # nothing left to train
    for expected, restored in zip(trained, resumed.get_weights()):
        np.testing.assert_array_equal(expected, restored)
    with strategy.scope():
        continued = small_model()
    history = train_stage(run, "vqvae", continued, batches(2), data(), 2, verbose=0)
    assert len(history.history["loss"]) == 1  # epoch 2 only, from the restored weights


def test_epoch_summaries_are_complete_tensorboard_event_files(tmp_path):
    from vqgen.runs.callbacks import EpochSummaries

    logs = tmp_path / "logs"
    model = small_model()
    history = model.fit(
        data(),
        validation_data=data(),
        epochs=2,
        verbose=0,
        shuffle=False,  # a Dataset comes shuffled (Keras warns otherwise)
        callbacks=[EpochSummaries(str(logs))],
    )
    assert sorted(os.listdir(logs)) == ["train", "validation"]  # no scratch folder left behind
    for split, key in (("train", "loss"), ("validation", "val_loss")):
        files = sorted(os.listdir(logs / split))
        assert len(files) == 2  # one per epoch
        seen = {}
        for name in files:
            for event in tf.compat.v1.train.summary_iterator(str(logs / split / name)):
                for value in event.summary.value:
                    seen[(value.tag, event.step)] = float(tf.make_ndarray(value.tensor))
        assert set(seen) == {("epoch_loss", 0), ("epoch_loss", 1)}
        for step in (0, 1):
            assert seen[("epoch_loss", step)] == pytest.approx(history.history[key][step], rel=1e-6)


@pytest.mark.parametrize("stage", ["vqvae", "prior"])
def test_each_stage_writes_metrics_checkpoints_and_tensorboard_logs(tmp_path, stage):
    run = RunFolder(tmp_path)
    model = small_model()
    history = train_stage(run, stage, model, batches(2), data(), 2, verbose=0)
    with open(run.metrics_path(stage), newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert [float(row["loss"]) for row in rows] == pytest.approx(history.history["loss"], rel=1e-6)
    checkpoints = sorted(os.listdir(run.checkpoints_path(stage)))
    assert checkpoints == ["epoch_001.weights.h5", "epoch_002.weights.h5"]
    restored = small_model()
    restored.load_weights(os.path.join(run.checkpoints_path(stage), checkpoints[-1]))
    for expected, got in zip(model.get_weights(), restored.get_weights()):
        np.testing.assert_array_equal(expected, got)
    assert sorted(os.listdir(run.logs_path(stage))) == ["train", "validation"]
    assert len(os.listdir(os.path.join(run.logs_path(stage), "train"))) == 2


def test_a_resumed_stage_refuses_changed_options(tmp_path):
    run = RunFolder(tmp_path)
    check_resumed_settings(run, "prior", {"epochs": 10, "filters": 64}, {"epochs": 10})  # same: fine
    with pytest.raises(ValueError, match=r"started with epochs=10 \(now 20\).*--overwrite"):
        check_resumed_settings(run, "prior", {"epochs": 10, "filters": 64}, {"epochs": 20})


def tiny_prior(kind):
    """A tiny prior with dropout 0.3, so the dropout draws (and MaskGIT's training masks) matter."""
    import prior

    keras.utils.set_random_seed(1)  # the same initial weights and seed-generator seeds every time
    model_class = {"maskgit": prior.MaskGIT, "transformer": prior.Transformer}[kind]
    model = model_class(6, (4, 4), num_layers=1, hidden_dim=8, num_heads=2, intermediate_dim=16, dropout=0.3)
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.5), jit_compile=False)
    return model


@pytest.mark.slow  # about 10 s: three fits, each tracing a train and a test step
@pytest.mark.parametrize("kind", ["maskgit", "transformer"])
def test_a_prior_resumed_from_the_backup_ends_bit_identical_to_an_uninterrupted_run(tmp_path, kind):
    codes = np.random.default_rng(0).integers(0, 6, size=(16, 4, 4)).astype("int32")
    validation = tf.data.Dataset.from_tensor_slices(codes).batch(8)

    def prior_batches(epochs):
        return lambda first_epoch: epoch_batches(codes, 4, 0, first_epoch, epochs)

    uninterrupted = tiny_prior(kind)
    train_stage(
        RunFolder(tmp_path / "one_go"), "prior", uninterrupted, prior_batches(2), validation, 2, verbose=0
    )
    interrupted = RunFolder(tmp_path / "interrupted")
    train_stage(interrupted, "prior", tiny_prior(kind), prior_batches(1), validation, 1, verbose=0)
    resumed = tiny_prior(kind)  # a fresh process's model: only the backup carries epoch 1's state over
    history = train_stage(interrupted, "prior", resumed, prior_batches(2), validation, 2, verbose=0)
    assert len(history.history["loss"]) == 1  # epoch 2 only
    # Weights, optimizer slots and the dropout / training-mask seed states
    expected = uninterrupted.variables + uninterrupted.optimizer.variables
    got = resumed.variables + resumed.optimizer.variables
    assert len(expected) == len(got)
    for before, after in zip(expected, got):
        np.testing.assert_array_equal(before.numpy(), after.numpy(), err_msg=before.path)
    other, seeds = {"maskgit": ("transformer", "2 random seed states but the model has 1")}.get(
        kind, ("maskgit", "1 random seed states but the model has 2")
    )
    with pytest.raises(ValueError, match=f"holds {seeds}; resume with the model it was started with"):
        EpochBackup(interrupted.backup_path("prior")).restore(tiny_prior(other))
