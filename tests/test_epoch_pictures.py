"""The pictures each epoch writes to TensorBoard: one complete event file per epoch and split."""

import os

import pytest
import tensorflow as tf


def summaries(folder):
    """`{event file name: {(tag, step): plugin name}}` of every event file in `folder`."""
    found = {}
    for name in sorted(os.listdir(folder)):
        found[name] = {
            (value.tag, event.step): value.metadata.plugin_data.plugin_name
            for event in tf.compat.v1.train.summary_iterator(os.path.join(folder, name))
            for value in event.summary.value
        }
    return found


@pytest.mark.slow  # the tiny_run fixture trains a run
def test_each_epoch_adds_reconstructions_codebook_usage_and_samples(tiny_run):
    stage1 = summaries(os.path.join(tiny_run, "logs", "vqvae", "validation"))
    assert len(stage1) == 2  # one event file per epoch
    for epoch, tags in enumerate(stage1.values()):
        assert tags[("reconstructions", epoch)] == "images"
        assert tags[("codebook_usage", epoch)] == "images"
        assert tags[("codes", epoch)] == "histograms"
        assert tags[("epoch_loss", epoch)] == "scalars"
    prior = summaries(os.path.join(tiny_run, "logs", "prior", "validation"))
    assert len(prior) == 2
    for epoch, tags in enumerate(prior.values()):
        assert tags[("samples", epoch)] == "images"
    # the image is the decoded grid of 10 rows of 8 samples (28x28 tiles, 2-pixel lines)
    event_file = os.path.join(tiny_run, "logs", "prior", "validation", sorted(prior)[0])
    for event in tf.compat.v1.train.summary_iterator(event_file):
        for value in event.summary.value:
            if value.tag == "samples":
                width, height = (int(x) for x in tf.make_ndarray(value.tensor)[:2])
                assert (width, height) == (8 * 30 + 2, 10 * 30 + 2)
