"""`evaluate_run` and `vqgen evaluate` on a tiny finished run."""

import hashlib
import json
import os
import shutil

import numpy as np
import pytest

from vqgen.cli import main
from vqgen.evaluation import classifier_predictions, frechet_distance, high_frequency_ratio, psnr
from vqgen.runs.evaluate_run import evaluate_run, format_table, load_or_train_classifier
from vqgen.runs.model_files import load_stage_model
from vqgen.runs.run_folder import RunFolder
from vqgen.runs.train_vqvae import load_splits
from vqgen.settings import GUIDANCE_BY_PRIOR


def copy_of(run, tmp_path):
    """A copy of a session run to evaluate: `evaluate` writes into the run, which the other tests
    (running at the same time with `-n 2`) read as it was trained."""
    copy = str(tmp_path / "run")
    shutil.copytree(run, copy)
    return copy


def file_hash(path):
    with open(path, "rb") as stream:
        return hashlib.sha256(stream.read()).hexdigest()


@pytest.mark.slow
def test_evaluate_writes_figures_pictures_and_caches_the_classifier(tiny_run, tmp_path, capsys):
    run_path = copy_of(tiny_run, tmp_path)
    assert main(["evaluate", "--run", run_path, "--samples", "20", "--classifier-epochs", "1"]) == 0
    table = capsys.readouterr().out
    rows = ("PSNR (dB)", "SSIM", "high-frequency ratio", "rFD (reconstructions)", "codes used", "perplexity")
    for row in (*rows, "dead codes", "prior bits per code"):
        assert row in table
    assert "sample label agreement" in table and "Fréchet distance, real validation" in table
    with open(os.path.join(run_path, "evaluation.json"), encoding="utf-8") as stream:
        written = json.load(stream)
    pictures = os.path.join(run_path, "evaluation")
    for name in ("codebook_usage.png", "reconstructions.png", "samples.png", "classifier.keras"):
        assert os.path.getsize(os.path.join(pictures, name)) > 0
    # The figures agree with direct computations on the validation split
    run = RunFolder(run_path)
    vqvae = load_stage_model(run, "vqvae")
    _, validation = load_splits(run.read_config()["data"])
    images = validation.images.astype("float32") / 255.0
    codes = vqvae.encode(images)
    usage = written["codebook"][0]
    np.testing.assert_array_equal(usage["counts"], np.bincount(codes.ravel(), minlength=16))
    assert usage["codes_used"] + usage["dead_codes"] == 16
    reconstructions = vqvae.reconstruct(images)
    assert written["reconstruction"]["psnr_db"] == pytest.approx(np.mean(psnr(images, reconstructions)))
    assert written["reconstruction"]["high_frequency_ratio"] == pytest.approx(
        high_frequency_ratio(images, reconstructions)
    )
    assert 0.0 < written["reconstruction"]["high_frequency_ratio"] < 2.0
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
    # The samples are drawn at the scale measured for a PixelCNN trained with label dropout
    assert prior_model.supports_guidance and samples["guidance"] == GUIDANCE_BY_PRIOR["pixelcnn"] != 1
    labels = np.repeat(np.arange(10), 2)  # 20 samples, the classes in equal blocks
    seed = run.read_config()["data"]["seed"]
    guided = prior_model.sample(20, labels=labels, seed=seed, guidance=GUIDANCE_BY_PRIOR["pixelcnn"])
    decoded = vqvae.decode(vqvae.from_token_grid(guided))
    agreement = np.mean(classifier_predictions(cached, decoded)[0] == labels)
    assert samples["label_agreement"] == pytest.approx(agreement)
    # rFD: the validation images against their reconstructions, in that classifier's features
    features = [classifier_predictions(cached, pictures)[1] for pictures in (images, reconstructions)]
    assert written["reconstruction"]["frechet_distance"] == pytest.approx(frechet_distance(*features))
    assert written["reconstruction"]["frechet_distance"] > 0.0


@pytest.mark.slow
def test_evaluate_refuses_images_of_another_shape(tiny_run, tmp_path):
    source = tmp_path / "small.npz"
    np.savez(source, images=np.zeros((4, 8, 8, 1), np.uint8))
    with pytest.raises(ValueError, match="shape"):
        evaluate_run(tiny_run, source=str(source), samples=0)
    with pytest.raises(ValueError, match="samples must be an int >= 0"):
        evaluate_run(tiny_run, samples=-1)


@pytest.mark.slow
@pytest.mark.parametrize("run_fixture", ["tiny_fsq_run", "tiny_rvq_run"])
def test_evaluate_fsq_and_rvq_runs_against_numpy(run_fixture, request, tmp_path):
    run_path = copy_of(request.getfixturevalue(run_fixture), tmp_path)
    # The prior's figures only for RVQ: FSQ's [N, h, w] grids take the VQ path the test above checks
    rvq = run_fixture == "tiny_rvq_run"
    written = evaluate_run(run_path, samples=4 if rvq else 0, classifier_epochs=1)
    run = RunFolder(run_path)
    vqvae = load_stage_model(run, "vqvae")
    _, validation = load_splits(run.read_config()["data"])
    images = validation.images.astype("float32") / 255.0
    assert written["num_images"] == len(images)
    # Usage over the whole set: one histogram of the 75 FSQ codes, or one per RVQ level of 16 codes
    codes = vqvae.encode(images)
    levels = [codes[..., 0], codes[..., 1]] if rvq else [codes]
    size = 16 if rvq else 5 * 5 * 3
    assert len(written["codebook"]) == len(levels)
    for level, (usage, level_codes) in enumerate(zip(written["codebook"], levels)):
        counts = np.bincount(level_codes.ravel(), minlength=size)
        assert len(counts) == size  # no code outside [0, K)
        np.testing.assert_array_equal(usage["counts"], counts)
        assert (
            usage["codes_used"] == np.count_nonzero(counts)
            and usage["dead_codes"] == size - usage["codes_used"]
        )
        p = counts[counts > 0] / counts.sum()
        assert usage["perplexity"] == pytest.approx(np.exp(-np.sum(p * np.log(p))))
        name = "codebook_usage.png" if len(levels) == 1 else f"codebook_usage_level{level}.png"
        assert os.path.getsize(os.path.join(run_path, "evaluation", name)) > 0
    if rvq:  # the distinct (level 0, level 1) pairs
        pairs = {tuple(pair) for pair in codes.reshape(-1, 2)}
        assert written["codebook_tuples"]["tuples_used"] == len(pairs)
        assert written["codebook_tuples"]["possible_tuples"] == 16**2
    else:
        assert written["codebook_tuples"] is None
    assert ("code tuples: used" in format_table(written)) == rvq
    # PSNR of the reconstructions, in NumPy
    mse = np.mean((vqvae.reconstruct(images).astype(np.float64) - images) ** 2, axis=(1, 2, 3))
    assert written["reconstruction"]["psnr_db"] == pytest.approx(np.mean(10 * np.log10(1 / mse)))
    if not rvq:  # samples=0: no classifier, so no rFD either
        assert written["likelihood"] is None and written["samples"] is None
        assert written["reconstruction"]["frechet_distance"] is None
        assert "rFD" not in format_table(written)
        return
    # Bits per code over every code of a grid: 7 x 7 positions x 2 levels
    prior_model = load_stage_model(run, "prior")
    nats = prior_model.log_prob(vqvae.to_token_grid(codes), validation.labels)
    assert written["likelihood"]["bits_per_code"] == pytest.approx(np.mean(-nats / np.log(2) / 98), rel=1e-5)
    assert written["likelihood"]["prior_bits_per_dim"] == pytest.approx(
        written["likelihood"]["bits_per_code"] * 98 / 784, rel=1e-6
    )
    assert written["samples"]["num_samples"] == 4
