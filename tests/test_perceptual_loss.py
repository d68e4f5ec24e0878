"""The LPIPS-style perceptual loss and `vqgen evaluate`'s LPIPS: the plumbing, not the quality.

No pretrained VGG16 weights can be had on this machine, so these tests make their own weights file:
`keras.applications.VGG16(weights=None)` on 32x32x3 inputs, its random weights saved to a temporary
`.weights.h5` and passed as `--perceptual-network PATH`. They check the formula against NumPy, where
gradients go, what is saved and exported, and the refusals; whether the loss sharpens
reconstructions needs the ImageNet weights and is not measured here.
"""

import json
import os
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

from vqgen.models.perceptual_loss import PerceptualLoss, perceptual_distance, vgg16_features
from vqgen.models.vqvae import VQVAE
from vqgen.runs.model_files import load_stage_model, weights_file_bytes
from vqgen.runs.run_folder import RunFolder
from vqgen.runs.train_vqvae import load_splits

# Written out here, apart from the module's list: the last convolution of each VGG16 block.
LAYERS = ("block1_conv2", "block2_conv2", "block3_conv3", "block4_conv3", "block5_conv3")
# keras.applications.vgg16.preprocess_input ("caffe"): BGR order, minus these means, on 0..255 pixels.
BGR_MEANS = np.array([103.939, 116.779, 123.68])
TINY = dict(
    num_embeddings=8,
    embedding_dim=4,
    downsample=2,
    hidden_channels=8,
    residual_channels=4,
    num_residual_blocks=1,
)


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory):
    """A VGG16 (no top) weights file of random weights: the test's stand-in for ImageNet weights."""
    keras.utils.set_random_seed(0)
    path = str(tmp_path_factory.mktemp("vgg16") / "vgg16_notop.weights.h5")
    keras.applications.VGG16(include_top=False, weights=None, input_shape=(32, 32, 3)).save_weights(path)
    return path


@pytest.fixture(scope="module")
def features(weights_file):
    return vgg16_features(weights_file)


def numpy_distance(features, images, reconstructions):
    """The distance by hand: VGG16 features of the layers above (read off the loaded network), each
    position's channel vector divided by its norm (+1e-10, as LPIPS), the squared difference summed
    over channels, averaged over positions, summed over layers. RGB images of 32x32 or more."""
    network = keras.Model(features.input, [features.get_layer(name).output for name in LAYERS])
    total = 0.0
    for pictures in (images, reconstructions):
        bgr = np.asarray(pictures, np.float64)[..., ::-1] * 255.0 - BGR_MEANS
        outputs = [np.asarray(layer, np.float64) for layer in network(bgr.astype("float32"))]
        unit = [layer / (np.sqrt(np.sum(layer**2, axis=-1, keepdims=True)) + 1e-10) for layer in outputs]
        total = unit if isinstance(total, float) else [a - b for a, b in zip(total, unit)]
    return sum(np.mean(np.sum(difference**2, axis=-1), axis=(1, 2)) for difference in total)


def test_the_distance_matches_numpy_and_is_zero_for_the_same_image(features):
    rng = np.random.default_rng(0)
    images, others = rng.random((2, 3, 32, 40, 3)).astype("float32")
    distance = perceptual_distance(features, images, others).numpy()
    assert distance.shape == (3,) and np.all(distance > 0)
    np.testing.assert_allclose(distance, numpy_distance(features, images, others), rtol=1e-4)
    np.testing.assert_allclose(perceptual_distance(features, images, images).numpy(), 0.0, atol=1e-6)


def test_gray_8x8_images_are_repeated_to_rgb_and_scaled_up_to_32(features):
    rng = np.random.default_rng(1)
    images, others = rng.random((2, 2, 8, 8, 1)).astype("float32")
    by_hand = [
        tf.image.resize(np.repeat(x, 3, axis=-1), (32, 32), "bilinear").numpy() for x in (images, others)
    ]
    np.testing.assert_allclose(
        perceptual_distance(features, images, others).numpy(), numpy_distance(features, *by_hand), rtol=1e-4
    )


def test_gradient_reaches_the_decoder_and_never_the_frozen_network(weights_file):
    keras.utils.set_random_seed(2)
    term = PerceptualLoss(weight=0.5, network=weights_file)
    model = VQVAE(input_shape=(8, 8, 1), loss_terms=[term], **TINY)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    vgg_weights = term.feature_model().weights
    images = tf.constant(np.random.default_rng(2).random((4, 8, 8, 1)).astype("float32"))
    with tf.GradientTape(persistent=True) as tape:
        reconstructions, logs = model.compute_losses(images, tape=tape)
    scaled = [
        tf.image.resize(np.repeat(x, 3, axis=-1), (32, 32), "bilinear").numpy()
        for x in (images, reconstructions)
    ]
    np.testing.assert_allclose(
        logs["perceptual_loss"], 0.5 * np.mean(numpy_distance(term.feature_model(), *scaled)), rtol=1e-4
    )
    decoder_gradients = tape.gradient(logs["perceptual_loss"], model.decoder.trainable_weights)
    assert all(np.any(gradient.numpy() != 0) for gradient in decoder_gradients)
    # The network is frozen and outside the model: no optimizer, checkpoint or export sees it.
    assert all(not weight.trainable for weight in vgg_weights)
    model_weights = {id(weight) for weight in model.weights + model.trainable_weights + model.codec_variables}
    assert not model_weights & {id(weight) for weight in vgg_weights}
    before = [weight.numpy() for weight in vgg_weights]
    history = model.fit(images, epochs=1, batch_size=4, verbose=0).history
    assert history["perceptual_loss"][0] > 0
    for old, weight in zip(before, vgg_weights):
        np.testing.assert_array_equal(old, weight.numpy())


def test_a_saved_model_keeps_the_settings_but_not_the_network(weights_file, tmp_path):
    model = VQVAE(
        input_shape=(8, 8, 1), loss_terms=[PerceptualLoss(weight=0.25, network=weights_file)], **TINY
    )
    path = str(tmp_path / "model.keras")
    model.save(path)
    # VGG16's weights alone are 58 MB: neither the model file nor a checkpoint holds them.
    assert os.path.getsize(path) < 1_000_000 and len(weights_file_bytes(model)) < 1_000_000
    loaded = keras.saving.load_model(path)
    (term,) = loaded.loss_terms
    assert (term.weight, term.network, term.feature_model()) == (0.25, weights_file, None)
    with pytest.raises(ValueError, match="without its VGG16 network"):
        loaded.compute_losses(tf.zeros((1, 8, 8, 1)))


def tiny_images(folder):
    """24 gray 8x8 images in an .npy file: 2 training steps of 16 at most."""
    path = os.path.join(folder, "tiny.npy")
    np.save(path, np.random.default_rng(3).integers(0, 256, (24, 8, 8, 1), dtype=np.uint8))
    return path


def train_args(run, data):
    return ["train", "--run", run, "--data", data, "--epochs", "1", "--batch-size", "16", "--quiet"] + [
        item for name, value in TINY.items() for item in (f"--{name.replace('_', '-')}", str(value))
    ]


def test_refusals_exit_2_with_one_line_and_leave_the_run_as_it_was(weights_file, tmp_path, run_cli, hashes):
    data = tiny_images(tmp_path)
    run = str(tmp_path / "run")
    wrong = str(tmp_path / "dense.weights.h5")
    keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]).save_weights(wrong)
    cases = {
        "--perceptual-network": ["--perceptual-weight", "0.1"],
        "No VGG16 weights file": [
            "--perceptual-weight",
            "0.1",
            "--perceptual-network",
            str(tmp_path / "gone.h5"),
        ],
        "does not hold the weights of VGG16": ["--perceptual-network", wrong],
    }
    for message, options in cases.items():
        with warnings.catch_warnings(record=True) as warned:  # no warning lines before the error either
            warnings.simplefilter("always")
            code, _, err = run_cli(train_args(run, data) + options)
        assert code == 2 and message in err and err.count("\n") == 1 and not warned, err
        assert not os.path.exists(run)
    # An existing run stays as it was, even with --overwrite.
    os.makedirs(run)
    with open(os.path.join(run, "notes.txt"), "w", encoding="utf-8") as stream:
        stream.write("mine")
    before = hashes(run)
    code, _, err = run_cli(train_args(run, data) + ["--overwrite", "--perceptual-weight", "0.1"])
    assert code == 2 and err.count("\n") == 1 and hashes(run) == before


def test_train_logs_the_loss_exports_no_vgg16_and_evaluate_reports_lpips(
    weights_file, features, tmp_path, run_cli
):
    data = tiny_images(tmp_path)
    run = str(tmp_path / "run")
    network = os.path.relpath(weights_file)  # recorded as an absolute path
    code, _, err = run_cli(
        train_args(run, data) + ["--perceptual-weight", "0.1", "--perceptual-network", network]
    )
    assert code == 0, err
    config = RunFolder(run).read_config()
    assert config["perceptual"] == {"perceptual_weight": 0.1, "perceptual_network": weights_file}
    with open(os.path.join(run, "metrics.csv"), encoding="utf-8") as stream:
        header, row = stream.read().splitlines()[:2]
    assert float(row.split(",")[header.split(",").index("perceptual_loss")]) > 0
    # The export holds the codec's variables only, in number and in shape.
    code, _, err = run_cli(["export", "--run", run, "--out", str(tmp_path / "exported")])
    assert code == 0, err
    saved = tf.train.list_variables(str(tmp_path / "exported" / "variables" / "variables"))
    vqvae = load_stage_model(RunFolder(run), "vqvae")
    expected = sorted(tuple(variable.shape) for variable in vqvae.codec_variables)
    assert sorted(tuple(shape) for name, shape in saved if name.startswith("model_variables/")) == expected
    assert not [name for name, _ in saved if "block" in name or "vgg" in name.lower()]
    # evaluate: LPIPS with the recorded network, against NumPy on the validation split.
    code, out, err = run_cli(["evaluate", "--run", run, "--samples", "0"])
    assert code == 0, err
    _, validation = load_splits(config["data"])
    images = validation.images.astype("float32") / 255.0
    scaled = [
        tf.image.resize(np.repeat(x, 3, axis=-1), (32, 32), "bilinear").numpy()
        for x in (images, vqvae.reconstruct(images))
    ]
    with open(os.path.join(run, "evaluation.json"), encoding="utf-8") as stream:
        lpips = json.load(stream)["reconstruction"]["lpips"]
    assert lpips == pytest.approx(np.mean(numpy_distance(features, *scaled)), rel=1e-4)
    assert "LPIPS" in out and f"{lpips:.4f}" in out
    # A run from before the option (no "perceptual" section): the row says why there is no LPIPS.
    del config["perceptual"]
    RunFolder(run).write_config(config)
    code, out, err = run_cli(["evaluate", "--run", run, "--samples", "0"])
    assert code == 0 and "LPIPS" in out and "not measured" in out, err
    # Resuming with the weights file gone: one line, exit 2.
    config["perceptual"] = {
        "perceptual_weight": 0.1,
        "perceptual_network": str(tmp_path / "moved.weights.h5"),
    }
    RunFolder(run).write_config(config)
    os.remove(os.path.join(run, "vqvae.keras"))  # unfinished again
    code, _, err = run_cli(["train", "--run", run, "--quiet"])
    assert code == 2 and "No VGG16 weights file" in err and err.count("\n") == 1, err
