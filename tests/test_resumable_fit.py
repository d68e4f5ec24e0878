"""fit_resumably: the non-finite guard keeps the last good epoch; a rerun resumes from it."""

import csv
import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from vqgen.resumable_fit import fit_resumably


def small_model():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
    return model


def data(target_scale=1.0):
    x = np.random.default_rng(0).normal(size=(32, 3)).astype("float32")
    return tf.data.Dataset.from_tensor_slices((x, x[:, :1] * target_scale)).batch(8)


def test_non_finite_loss_stops_with_epoch_and_step_and_keeps_the_last_good_state(tmp_path):
    backup, metrics = str(tmp_path / "backup"), str(tmp_path / "metrics.csv")
    model = small_model()
    fit_resumably(model, data(), data(), 1, backup, metrics, verbose=0)
    good = [w.copy() for w in model.get_weights()]
    with pytest.raises(ValueError, match=r"became (inf|nan) at epoch 2, step 1"):
        fit_resumably(model, data(target_scale=np.inf), data(), 3, backup, metrics, verbose=0)
    with open(os.path.join(backup, "epoch.json")) as stream:
        assert json.load(stream)["epochs_completed"] == 1
    fresh = small_model()
    fit_resumably(fresh, data(), data(), 1, backup, metrics, verbose=0)  # nothing left to run
    for expected, restored in zip(good, fresh.get_weights()):
        np.testing.assert_array_equal(expected, restored)


def test_rerun_continues_from_the_backup_and_records_each_epoch_once(tmp_path):
    backup, metrics = str(tmp_path / "backup"), str(tmp_path / "metrics.csv")
    first = small_model()
    fit_resumably(first, data(), data(), 2, backup, metrics, verbose=0)
    second = small_model()
    history = fit_resumably(second, data(), data(), 4, backup, metrics, verbose=0)
    assert len(history.history["loss"]) == 2  # epochs 3 and 4 only
    with open(metrics, newline="") as stream:
        assert [int(row["epoch"]) for row in csv.DictReader(stream)] == [1, 2, 3, 4]
