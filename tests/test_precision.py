"""precision_policy and --precision: both stages train under a Keras mixed-precision policy, keep
float32 variables and losses, and their saved models load and sample in float32."""

import json

import keras
import numpy as np
import pytest

import prior
from vqgen import VQVAE
from vqgen.cli import build_parser
from vqgen.runs.precision import cpu_flags, precision_policy, resolve_precision
from vqgen.runs.train_prior import train_prior
from vqgen.runs.train_vqvae import train_vqvae
from vqgen.settings import PRECISIONS, PRIOR_TRAINING_DEFAULTS, VQVAE_TRAINING_DEFAULTS


def test_policy_is_set_inside_the_block_and_restored_after_it():
    assert keras.config.dtype_policy().name == "float32"
    with precision_policy("mixed_bfloat16"):
        assert keras.config.dtype_policy().name == "mixed_bfloat16"
    assert keras.config.dtype_policy().name == "float32"
    with pytest.raises(RuntimeError), precision_policy("mixed_float16"):
        raise RuntimeError("the policy is restored on errors too")
    assert keras.config.dtype_policy().name == "float32"
    with pytest.raises(
        ValueError, match="precision must be one of auto, float32, mixed_bfloat16, mixed_float16"
    ):
        with precision_policy("bfloat16"):
            pass


@pytest.mark.parametrize(
    "precision, compute_dtype", [("mixed_bfloat16", "bfloat16"), ("mixed_float16", "float16")]
)
def test_models_built_under_a_mixed_policy_compute_in_it_with_float32_variables(precision, compute_dtype):
    images = np.random.default_rng(0).random((4, 16, 16, 3)).astype("float32")
    codes = np.random.default_rng(1).integers(0, 8, size=(4, 4, 4)).astype("int32")
    with precision_policy(precision):
        vqvae = VQVAE(input_shape=(16, 16, 3), num_embeddings=8, hidden_channels=8, residual_channels=4)
        vqvae.compile(optimizer=keras.optimizers.Adam(1e-3))
        pixelcnn = prior.PixelCNN(8, (4, 4), filters=4)
        pixelcnn.compile(optimizer="adam")
    for model in (vqvae, pixelcnn):
        assert {variable.dtype for variable in model.trainable_weights} == {"float32"}
    assert vqvae.encoder.compute_dtype == pixelcnn.gated_blocks[0].compute_dtype == compute_dtype
    # Loss scaling under float16 only, as Keras does for mixed_float16.
    scaled = isinstance(vqvae.optimizer, keras.optimizers.LossScaleOptimizer)
    assert scaled == (precision == "mixed_float16")
    # Losses and logits stay float32 (training under the policy: the end-to-end test below).
    assert vqvae.compute_losses(images, training=False)[1]["loss"].dtype == "float32"
    assert pixelcnn(codes).dtype == "float32"


@pytest.mark.slow  # trains both stages of a tiny run
def test_both_stages_train_under_the_chosen_precision_and_load_in_float32(
    tmp_path, tiny_digits, tiny_vqvae_settings
):
    run = tmp_path / "run"
    common = dict(epochs=1, precision="mixed_bfloat16")
    vqvae = train_vqvae(str(run), source=tiny_digits, verbose=0, **tiny_vqvae_settings, **common)
    assert vqvae.encoder.compute_dtype == "bfloat16"
    pixelcnn = train_prior(str(run), num_layers=2, filters=4, batch_size=32, verbose=0, **common)
    assert pixelcnn.gated_blocks[0].compute_dtype == "bfloat16"
    config = json.loads((run / "config.json").read_text())
    assert config["vqvae_training"]["precision"] == config["prior_training"]["precision"] == "mixed_bfloat16"
    loaded = keras.models.load_model(run / "prior.keras")
    assert loaded.gated_blocks[0].compute_dtype == "float32"
    np.testing.assert_array_equal(
        loaded.sample(2, seed=0, method="cached"), loaded.sample(2, seed=0, method="full")
    )


@pytest.mark.parametrize(
    "flags, expected",
    [({"avx512f", "amx_bf16"}, "mixed_bfloat16"), ({"avx512_bf16"}, "mixed_bfloat16"), ({"avx2"}, "float32")],
)
def test_auto_is_bfloat16_only_on_cpus_with_native_bfloat16(flags, expected):
    assert resolve_precision("auto", flags=flags) == expected
    assert resolve_precision("mixed_float16", flags=flags) == "mixed_float16"
    with pytest.raises(ValueError, match="Received: precision='bf16'"):
        resolve_precision("bf16")


def test_auto_policy_follows_this_machine():
    with precision_policy("auto"):
        chosen = keras.config.dtype_policy().name
    assert chosen == resolve_precision("auto", flags=cpu_flags())


def test_cli_offers_precision_for_each_stage_with_the_settings_defaults():
    parser = build_parser()
    args = parser.parse_args(["run", "--precision", "mixed_bfloat16", "--prior-precision", "float32"])
    assert (args.precision, args.prior_precision) == ("mixed_bfloat16", "float32")
    assert parser.parse_args(["train", "--run", "r"]).precision is None  # the settings default applies
    with pytest.raises(SystemExit):
        parser.parse_args(["train", "--run", "r", "--precision", "float64"])
    # Measured: both stages in bfloat16 where the CPU has it (equal quality, faster;
    # scripts/compare_precision.py).
    assert (VQVAE_TRAINING_DEFAULTS.precision, PRIOR_TRAINING_DEFAULTS.precision) == ("auto", "auto")
    assert "auto" in PRECISIONS


# The Transformer and MaskGIT share their block settings.
TINY_BLOCKS = dict(num_layers=1, hidden_dim=16, num_heads=2, intermediate_dim=16)
TINY_PRIORS = {
    "pixelcnn": lambda: prior.PixelCNN(8, (3, 3), num_classes=2, num_layers=2, filters=8, label_dropout=0.1),
    "transformer": lambda: prior.Transformer(8, (3, 3), num_classes=2, label_dropout=0.1, **TINY_BLOCKS),
    "maskgit": lambda: prior.MaskGIT(8, (3, 3), num_classes=2, label_dropout=0.1, **TINY_BLOCKS),
}


@pytest.mark.parametrize("kind", sorted(TINY_PRIORS))
def test_a_prior_saved_under_mixed_bfloat16_loads_and_samples_in_float32(kind, tmp_path):
    with precision_policy("mixed_bfloat16"):
        trained = TINY_PRIORS[kind]()
    path = str(tmp_path / "prior.keras")
    trained.save(path)
    loaded = keras.saving.load_model(path)
    reference = TINY_PRIORS[kind]()  # built in float32, given the saved weights
    reference.set_weights(trained.get_weights())
    assert loaded.compute_dtype == "float32"
    assert {layer.compute_dtype for layer in loaded._flatten_layers()} == {"float32"}
    labels = np.array([0, 1, 1])
    codes = np.random.default_rng(0).integers(0, 8, size=(3, 3, 3)).astype("int32")
    inputs = {"codes": codes, "labels": labels}
    np.testing.assert_allclose(loaded(inputs), reference(inputs), atol=1e-6)
    np.testing.assert_array_equal(
        loaded.sample(3, labels=labels, seed=4, guidance=2.0),
        reference.sample(3, labels=labels, seed=4, guidance=2.0),
    )
