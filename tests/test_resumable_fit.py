"""fit_resumably: the non-finite guard keeps the last good epoch; a rerun resumes from it."""

import csv
import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from vqgen.data import epoch_batches
from vqgen.runs.stage_trainer import fit_resumably


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
    backup, metrics = str(tmp_path / "backup"), str(tmp_path / "metrics.csv")
    model = small_model()
    fit_resumably(model, batches(1), data(), 1, backup, metrics, verbose=0)
    good = [w.copy() for w in model.get_weights()]
    with pytest.raises(ValueError, match=r"became (inf|nan) at epoch 2, step 1"):
        fit_resumably(model, batches(3, target_scale=np.inf), data(), 3, backup, metrics, verbose=0)
    with open(os.path.join(backup, "epoch.json")) as stream:
        assert json.load(stream)["epochs_completed"] == 1
    fresh = small_model()
    fit_resumably(fresh, batches(1), data(), 1, backup, metrics, verbose=0)  # nothing left to run
    for expected, restored in zip(good, fresh.get_weights()):
        np.testing.assert_array_equal(expected, restored)


def test_rerun_continues_from_the_backup_and_records_each_epoch_once(tmp_path):
    backup, metrics = str(tmp_path / "backup"), str(tmp_path / "metrics.csv")
    first = small_model()
    fit_resumably(first, batches(2), data(), 2, backup, metrics, verbose=0)
    second = small_model()
    history = fit_resumably(second, batches(4), data(), 4, backup, metrics, verbose=0)
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


def test_resuming_under_a_distribution_strategy(tmp_path):
    backup, metrics = str(tmp_path / "backup"), str(tmp_path / "metrics.csv")
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    for epochs in (1, 2):  # the second call restores inside the strategy, then trains epoch 2
        with strategy.scope():
            model = small_model()
        history = fit_resumably(model, batches(epochs), data(), epochs, backup, metrics, verbose=0)
        assert len(history.history["loss"]) == 1


def test_epoch_summaries_are_complete_tensorboard_event_files(tmp_path):
    from vqgen.runs.callbacks import EpochSummaries

    logs = tmp_path / "logs"
    model = small_model()
    history = model.fit(data(), validation_data=data(), epochs=2, verbose=0,
                        callbacks=[EpochSummaries(str(logs))])
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
