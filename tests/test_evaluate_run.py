"""`evaluate_run` and `vqgen evaluate` on a tiny finished run."""

import hashlib
import json
import os

import numpy as np
import pytest

from vqgen.cli import main
from vqgen.evaluation import classifier_predictions, psnr
from vqgen.runs.evaluate_run import evaluate_run, load_or_train_classifier
from vqgen.runs.model_files import load_stage_model
from vqgen.runs.run_folder import RunFolder
from vqgen.runs.train_vqvae import load_splits


def file_hash(path):
    with open(path, "rb") as stream:
        return hashlib.sha256(stream.read()).hexdigest()


@pytest.mark.slow
def test_evaluate_writes_figures_pictures_and_caches_the_classifier(tiny_run, capsys):
    assert main(["evaluate", "--run", tiny_run, "--samples", "20", "--classifier-epochs", "1"]) == 0
    table = capsys.readouterr().out
    for row in ("PSNR (dB)", "SSIM", "codes used", "perplexity", "dead codes", "prior bits per code"):
        assert row in table
    assert "sample label agreement" in table and "Fréchet distance, real validation" in table
    with open(os.path.join(tiny_run, "evaluation.json"), encoding="utf-8") as stream:
        written = json.load(stream)
    pictures = os.path.join(tiny_run, "evaluation")
    for name in ("codebook_usage.png", "reconstructions.png", "samples.png", "classifier.keras"):
        assert os.path.getsize(os.path.join(pictures, name)) > 0
    # The figures agree with direct computations on the validation split
    run = RunFolder(tiny_run)
    vqvae = load_stage_model(run, "vqvae")
    _, validation = load_splits(run.read_config()["data"])
    images = validation.images.astype("float32") / 255.0
    codes = vqvae.encode(images)
    usage = written["codebook"][0]
    np.testing.assert_array_equal(usage["counts"], np.bincount(codes.ravel(), minlength=16))
    assert usage["codes_used"] + usage["dead_codes"] == 16
    assert written["reconstruction"]["psnr_db"] == pytest.approx(
        np.mean(psnr(images, vqvae.reconstruct(images)))
    )
    likelihood = written["likelihood"]
    prior_model = load_stage_model(run, "prior")
    nats = prior_model.log_prob(codes, validation.labels)
    assert likelihood["bits_per_code"] == pytest.approx(np.mean(-nats / np.log(2) / 49), rel=1e-5)
    assert likelihood["prior_bits_per_dim"] == pytest.approx(likelihood["bits_per_code"] * 49 / 784, rel=1e-6)
    assert likelihood["bits_per_dim"] > likelihood["prior_bits_per_dim"]
    samples = written["samples"]
    assert 0.0 <= samples["label_agreement"] <= 1.0 and samples["num_samples"] == 20
    assert samples["frechet_distance"] >= 0.0 and samples["frechet_distance_validation_floor"] >= 0.0
    # The classifier is cached: loaded again, not retrained
    path = os.path.join(pictures, "classifier.keras")
    classifier = file_hash(path)
    train = load_splits(run.read_config()["data"])[0]
    cached = load_or_train_classifier(run, None, train.labels, 10, epochs=1, seed=0)
    assert file_hash(path) == classifier
    accuracy = np.mean(classifier_predictions(cached, images)[0] == validation.labels)
    assert accuracy == pytest.approx(samples["classifier_validation_accuracy"])


@pytest.mark.slow
def test_evaluate_refuses_images_of_another_shape(tiny_run, tmp_path):
    source = tmp_path / "small.npz"
    np.savez(source, images=np.zeros((4, 8, 8, 1), np.uint8))
    with pytest.raises(ValueError, match="shape"):
        evaluate_run(tiny_run, source=str(source), samples=0)
    with pytest.raises(ValueError, match="samples must be an int >= 0"):
        evaluate_run(tiny_run, samples=-1)
