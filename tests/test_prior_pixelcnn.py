"""PixelCNN: causality, likelihood, training, serialization, building and input validation."""

import itertools
import math
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

import prior
from prior import pixelcnn as pixelcnn_module


@pytest.fixture
def small_prior(randomise_weights):
    """Makes small priors with random weights: `small_prior(num_embeddings, grid_shape, ...)`."""

    def make(num_embeddings=5, grid_shape=(3, 4), num_classes=None, seed=0):
        model = prior.PixelCNN(
            num_embeddings, grid_shape, num_classes=num_classes, num_layers=2, filters=8, kernel_size=3
        )
        return randomise_weights(model, scale=0.5, seed=seed)

    return make


def numpy_log_prob(logits, codes):
    logits = logits.astype("float64")
    shifted = logits - logits.max(axis=-1, keepdims=True)
    log_softmax = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    picked = np.take_along_axis(log_softmax, codes[..., None], axis=-1)[..., 0]
    return picked.sum(axis=(1, 2))


# ---------------------------------------------------------------------- causality

ROWS, COLS, K = 5, 5, 6


@pytest.fixture
def causal_prior(randomise_weights):
    """Makes priors with every weight, biases included, redrawn at random.

    No connection is then silently zero. By default (3 blocks, kernel 5) the
    receptive field covers the whole 5x5 grid: each earlier position is in
    range.
    """

    def make(num_classes=None, seed=0, grid_shape=(ROWS, COLS), num_layers=3, kernel_size=5):
        model = prior.PixelCNN(
            K,
            grid_shape,
            num_classes=num_classes,
            num_layers=num_layers,
            filters=8,
            kernel_size=kernel_size,
        )
        return randomise_weights(model, scale=0.5, seed=seed)

    return make


def perturbation_effects(model, labels=None):
    """effect[p, r, c] = max |change of logits at (r, c)| when code p changes."""
    rows, cols = model.grid_shape
    rng = np.random.default_rng(1)
    base = rng.integers(0, K, size=(rows * cols,))
    grids = np.repeat(base[None], rows * cols + 1, axis=0)
    for position in range(rows * cols):
        grids[position + 1, position] = (base[position] + 1 + rng.integers(0, K - 1)) % K
    grids = grids.reshape(-1, rows, cols).astype("int32")
    # One grid per call: every call then runs the same kernels, so a code the
    # logits do not depend on changes them by exactly zero. In one batch the
    # CPU's kernels may round batch elements differently (by ~1e-7).
    logits = np.concatenate(
        [
            model(
                grid[None] if labels is None else {"codes": grid[None], "labels": np.array([labels])}
            ).numpy()
            for grid in grids
        ]
    )
    return np.abs(logits[1:] - logits[:1]).max(axis=-1).reshape(rows * cols, rows, cols)


@pytest.mark.parametrize("num_classes", [None, 3])
def test_logits_depend_exactly_on_earlier_positions(causal_prior, num_classes):
    model = causal_prior(num_classes)
    effects = perturbation_effects(model, labels=None if num_classes is None else 2)
    for target in range(ROWS * COLS):
        row, col = divmod(target, COLS)
        later = effects[target:, row, col]
        earlier = effects[:target, row, col]
        assert np.all(later == 0.0), f"codes at/after {(row, col)} leak into its logits"
        assert np.all(earlier > 1e-4), (
            f"earlier positions {np.flatnonzero(earlier <= 1e-4)} do not reach {(row, col)}"
        )


def test_blind_spot_positions_above_right_reach_the_current_one(causal_prior):
    model = causal_prior()
    effects = perturbation_effects(model)
    # (1, 4) is above and right of (2, 1): the blind spot of a plain masked PixelCNN.
    assert effects[1 * COLS + 4, 2, 1] > 1e-4
    assert effects[0 * COLS + 4, 3, 0] > 1e-4


def test_labels_change_logits_everywhere(causal_prior):
    model = causal_prior(num_classes=3)
    codes = np.random.default_rng(2).integers(0, K, size=(1, ROWS, COLS)).astype("int32")
    first = model({"codes": codes, "labels": np.array([0])}).numpy()
    second = model({"codes": codes, "labels": np.array([1])}).numpy()
    assert np.all(np.abs(first - second).max(axis=-1) > 1e-4)


def test_receptive_field_covers_the_documented_window(causal_prior):
    # 2 blocks of kernel 3: n = 2. Documented: every earlier code up to n + 1
    # rows above and n columns to either side, and n columns left on the row.
    span = 2
    with pytest.warns(UserWarning, match="sees only 3 rows above and 2 columns either side.*7x7 grid"):
        model = causal_prior(grid_shape=(7, 7), num_layers=2, kernel_size=3)
    effects = perturbation_effects(model)
    for row, col in [(3, 3), (4, 2), (6, 6), (5, 0)]:
        for other_row in range(max(0, row - span - 1), row + 1):
            for other_col in range(max(0, col - span), min(7, col + span + 1)):
                if other_row == row and other_col >= col:
                    continue
                assert effects[other_row * 7 + other_col, row, col] > 1e-4, (
                    f"{(other_row, other_col)} should reach {(row, col)}"
                )
        later = effects[row * 7 + col :, row, col]
        assert np.all(later == 0.0)


@pytest.mark.parametrize("grid_shape", [(4, 6), (6, 3), (5, 5), (2, 7)])
@pytest.mark.parametrize("extra_layers", [0, -1])
def test_layers_to_cover_is_the_exact_depth_that_sees_the_whole_grid(causal_prior, grid_shape, extra_layers):
    # Kernel 3 widens the field by one position per block, so one block fewer must miss one.
    num_layers = pixelcnn_module.layers_to_cover(grid_shape, 3) + extra_layers
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = causal_prior(grid_shape=grid_shape, num_layers=num_layers, kernel_size=3)
    warned = any("not the whole" in str(warning.message) for warning in caught)
    effects = perturbation_effects(model)
    rows, cols = grid_shape
    earlier_reach = [
        effects[:target, target // cols, target % cols].min() > 0.0 for target in range(1, rows * cols)
    ]
    assert all(earlier_reach) == (extra_layers == 0)
    assert warned == (extra_layers < 0)


def test_default_prior_on_32x32_sees_every_earlier_code_and_no_later_one(randomise_weights):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the default depth must not warn
        model = prior.PixelCNN(K, (32, 32), filters=8)
    assert model.num_layers == 16 and model.kernel_size == 5
    randomise_weights(model, scale=0.5, seed=3)
    base = np.random.default_rng(4).integers(1, K, size=32 * 32)
    base[0] = 0  # code 0 only at (0, 0): its embedding row's gradient is that position's influence

    # (0, 0) reaches (31, 31). A finite difference would be lost in float32 rounding after 16
    # blocks; the gradient (a product of the same factors) is not.
    table = model.code_embedding.embeddings
    with tf.GradientTape() as tape:
        logits = model(base.reshape(1, 32, 32).astype("int32"))
        corner = tf.reduce_sum(logits[0, 31, 31] * np.linspace(-1.0, 1.0, K, dtype="float32"))
    influence = tf.convert_to_tensor(tape.gradient(corner, table))[0]
    assert np.abs(influence.numpy()).max() > 0.0, "the code at (0, 0) does not reach (31, 31)"

    # No later code changes an earlier logit: change (0, 0) and every 41st position after it.
    positions = np.arange(0, 32 * 32, 41)
    grids = np.repeat(base[None], len(positions) + 1, axis=0)
    grids[np.arange(1, len(positions) + 1), positions] = (base[positions] + 1) % K
    logits = model(grids.reshape(-1, 32, 32).astype("int32")).numpy()
    effects = np.abs(logits[1:] - logits[:1]).max(axis=-1).reshape(len(positions), 32 * 32)
    for changed, position in enumerate(positions):
        assert np.all(effects[changed, : position + 1] == 0.0), f"{divmod(position, 32)} leaks backwards"
        assert effects[changed, position + 1 :].max() > 0.0


# ---------------------------------------------------------------------- likelihood


@pytest.mark.parametrize("num_classes", [None, 4])
def test_log_prob_matches_numpy_log_softmax_sum(small_prior, num_classes):
    model = small_prior(num_classes=num_classes)
    rng = np.random.default_rng(1)
    codes = rng.integers(0, 5, size=(6, 3, 4)).astype("int32")
    labels = None if num_classes is None else rng.integers(0, num_classes, size=6)
    inputs = codes if labels is None else {"codes": codes, "labels": labels}
    expected = numpy_log_prob(model(inputs).numpy(), codes)
    result = model.log_prob(codes, labels)
    assert result.dtype == np.float32 and result.shape == (6,)
    np.testing.assert_allclose(result, expected, rtol=1e-5, atol=1e-4)


def test_probabilities_of_all_grids_sum_to_one(small_prior):
    # Exact normalisation over every 2x2 grid of 3 codes needs causal logits.
    model = small_prior(num_embeddings=3, grid_shape=(2, 2))
    grids = np.array(list(itertools.product(range(3), repeat=4))).reshape(-1, 2, 2)
    assert math.isclose(np.exp(model.log_prob(grids).astype("float64")).sum(), 1.0, rel_tol=1e-4)


def test_call_returns_float32_logits_of_the_grid_shape(small_prior):
    model = small_prior(num_classes=2)
    logits = model({"codes": np.zeros((3, 3, 4), "int32"), "labels": np.array([0, 1, 1])})
    assert logits.shape == (3, 3, 4, 5) and logits.dtype == tf.float32


def structured_codes(count, seed=0):
    """Grids that repeat one random code (of 8) everywhere: easy to learn."""
    values = np.random.default_rng(seed).integers(0, 8, size=count)
    return np.broadcast_to(values[:, None, None], (count, 4, 4)).astype("int32")


@pytest.mark.slow
def test_fit_on_codes_then_on_a_dataset_of_codes_lowers_loss_and_logs_bits_per_code():
    model = prior.PixelCNN(8, (4, 4), num_layers=2, filters=16, kernel_size=3)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    codes = structured_codes(128)
    before = model.evaluate(codes, batch_size=64, verbose=0, return_dict=True)
    on_arrays = model.fit(codes, epochs=2, batch_size=32, verbose=0).history
    dataset = tf.data.Dataset.from_tensor_slices(codes).shuffle(128, seed=0).batch(32)
    on_dataset = model.fit(dataset, epochs=2, verbose=0, shuffle=False).history  # a Dataset comes shuffled
    after = model.evaluate(codes, batch_size=64, verbose=0, return_dict=True)
    assert after["loss"] < 0.7 * before["loss"]
    losses = on_arrays["loss"] + on_dataset["loss"]
    assert losses[-1] < losses[0]
    for logs in (before, after):
        assert math.isclose(logs["bits_per_code"], logs["loss"] / math.log(2), rel_tol=1e-4)
    assert len(on_arrays["bits_per_code"]) == len(on_dataset["bits_per_code"]) == 2
    nats_per_code = -model.log_prob(codes).mean() / 16
    assert math.isclose(after["loss"], nats_per_code, rel_tol=1e-3)


def test_evaluate_bits_per_code_weights_each_grid_once_when_the_last_batch_is_short(small_prior):
    # 5 grids at batch 2: batches of 2, 2 and 1. An unweighted mean of the three batch means would
    # count the lone last grid twice; the metric must equal the NumPy mean over grids.
    model = small_prior()
    model.compile(optimizer="adam")
    codes = np.random.default_rng(4).integers(0, 5, size=(5, 3, 4)).astype("int32")
    logs = model.evaluate(codes, batch_size=2, verbose=0, return_dict=True)
    logits = np.stack([model(codes[i : i + 1]).numpy()[0] for i in range(5)])
    bits = -numpy_log_prob(logits, codes).mean() / 12 / math.log(2)
    assert logs["bits_per_code"] == pytest.approx(bits, rel=1e-5)
    assert logs["loss"] == pytest.approx(bits * math.log(2), rel=1e-5)


@pytest.mark.slow
def test_fit_accepts_a_dataset_of_code_and_label_dicts():
    model = prior.PixelCNN(8, (4, 4), num_classes=8, num_layers=2, filters=16, kernel_size=3)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    codes = structured_codes(64, seed=1)
    labels = codes[:, 0, 0]  # the label announces the repeated code
    dataset = tf.data.Dataset.from_tensor_slices({"codes": codes, "labels": labels}).batch(16)
    history = model.fit(dataset, epochs=3, verbose=0, shuffle=False).history
    assert history["loss"][-1] < history["loss"][0]
    assert "bits_per_code" in history


def test_fit_with_targets_is_rejected(small_prior):
    model = small_prior()
    model.compile(optimizer="adam")
    codes = np.zeros((4, 3, 4), "int32")
    with pytest.raises(ValueError, match="x only"):
        model.fit(codes, codes, verbose=0)


@pytest.mark.parametrize("num_classes", [None, 3])
def test_keras_file_round_trip_gives_identical_logits(small_prior, tmp_path, num_classes):
    model = small_prior(num_classes=num_classes)
    codes = np.random.default_rng(2).integers(0, 5, size=(2, 3, 4)).astype("int32")
    inputs = codes if num_classes is None else {"codes": codes, "labels": np.array([0, 2])}
    path = tmp_path / "prior.keras"
    model.save(path)
    restored = keras.saving.load_model(path)
    assert isinstance(restored, prior.PixelCNN)
    np.testing.assert_array_equal(restored(inputs).numpy(), model(inputs).numpy())
    assert restored.get_config() == model.get_config()


def test_loading_a_shallow_prior_does_not_repeat_its_depth_warning(tmp_path):
    with pytest.warns(UserWarning, match="sees only"):
        model = prior.PixelCNN(4, (7, 7), num_layers=1, filters=4, kernel_size=3)
    model(np.zeros((1, 7, 7), "int32"))
    model.save(tmp_path / "shallow.keras")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        restored = keras.saving.load_model(tmp_path / "shallow.keras")
    assert restored.num_layers == 1
    assert not [warning for warning in caught if "sees only" in str(warning.message)]


def test_get_config_round_trip():
    model = prior.PixelCNN(11, (6, 5), num_classes=4, num_layers=3, filters=12, kernel_size=5)
    config = model.get_config()
    for key, value in dict(
        num_embeddings=11, grid_shape=(6, 5), num_classes=4, num_layers=3, filters=12, kernel_size=5
    ).items():
        assert config[key] == value
    clone = prior.PixelCNN.from_config(config)
    assert clone.get_config() == config
    clone.build()
    model.build()
    clone.set_weights(model.get_weights())
    codes = np.ones((1, 6, 5), "int32")
    inputs = {"codes": codes, "labels": np.array([3])}
    np.testing.assert_array_equal(clone(inputs).numpy(), model(inputs).numpy())


def test_init_builds_the_model_and_a_second_build_changes_nothing():
    model = prior.PixelCNN(5, (3, 4), num_layers=2, filters=8, kernel_size=3)
    assert model.built
    before = model.get_weights()
    assert len(before) == len(model.weights) > 0
    model.build()
    after = model.get_weights()
    assert len(after) == len(before)
    for old, new in zip(before, after):
        np.testing.assert_array_equal(new, old)


def test_compiled_functions_are_built_once_and_kept_outside_keras_tracking(small_prior):
    model = small_prior()
    codes = np.zeros((2, 3, 4), "int32")
    model.log_prob(codes)
    model.sample(1, seed=0)
    functions = dict(model._compiled_functions.by_key)
    assert ("log_prob", False) in functions and len(functions) == 2
    model.log_prob(codes)
    model.sample(1, seed=1)
    assert model._compiled_functions.by_key == functions
    built = []
    assert model._compiled(("log_prob", False), lambda: built.append(1)) is functions["log_prob", False]
    assert not built
    assert not any(isinstance(value, tf.types.experimental.GenericFunction) for value in vars(model).values())


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(num_embeddings=1), "num_embeddings"),
        (dict(num_embeddings=4.0), "num_embeddings"),
        (dict(grid_shape=(7,)), "grid_shape"),
        (dict(grid_shape=(7, 0)), "grid_shape"),
        (dict(num_classes=0), "num_classes"),
        (dict(num_layers=0), "num_layers"),
        (dict(filters=0), "filters"),
        (dict(kernel_size=4), "kernel_size"),
        (dict(kernel_size=1), "kernel_size"),
    ],
)
def test_invalid_constructor_arguments_raise(kwargs, message):
    arguments = {**dict(num_embeddings=8, grid_shape=(7, 7)), **kwargs}
    with pytest.raises(ValueError, match=message):
        prior.PixelCNN(**arguments)


def test_check_codes_returns_int32_arrays(small_prior):
    model = small_prior(num_classes=3)
    codes, labels = model.check_codes(np.zeros((2, 3, 4), "int64"), [0, 2])
    assert codes.dtype == np.int32 and labels.dtype == np.int32


@pytest.mark.parametrize(
    "num_classes, codes, labels, message",
    [
        (None, np.full((2, 3, 4), 5), None, r"\[0, 5\)"),
        (None, np.full((2, 3, 4), -1), None, r"\[0, 5\)"),
        (None, np.zeros((2, 4, 3), int), None, "grid_shape"),
        (None, np.zeros((3, 4), int), None, "grid_shape"),
        (None, np.zeros((2, 3, 4)), None, "integer"),
        (None, np.zeros((2, 3, 4), int), [0, 1], "unconditional"),
        (3, np.zeros((2, 3, 4), int), None, "required"),
        (3, np.zeros((2, 3, 4), int), [0, 3], r"\[0, 3\)"),
        (3, np.zeros((2, 3, 4), int), [0], "expected 2 labels"),
        (3, np.zeros((2, 3, 4), int), [0.0, 1.0], "integer"),
    ],
)
def test_check_codes_and_log_prob_reject_bad_inputs(small_prior, num_classes, codes, labels, message):
    model = small_prior(num_classes=num_classes)
    with pytest.raises(ValueError, match=message):
        model.check_codes(codes, labels)
    with pytest.raises(ValueError, match=message):
        model.log_prob(codes, labels)


def test_calling_with_the_wrong_input_structure_raises(small_prior):
    unconditional, conditional = small_prior(), small_prior(num_classes=2)
    codes = np.zeros((1, 3, 4), "int32")
    with pytest.raises(ValueError, match="unconditional"):
        unconditional({"codes": codes, "labels": np.array([0])})
    with pytest.raises(ValueError, match="class-conditional"):
        conditional(codes)


def test_compute_loss_with_sample_weight_is_the_weighted_mean_nats_per_code(small_prior):
    # Keras drops array sample weights when y is None, so weights reach
    # compute_loss only from (x, None, weight) batches; check it directly.
    model = small_prior()
    rng = np.random.default_rng(4)
    codes = rng.integers(0, 5, size=(6, 3, 4)).astype("int32")
    weights = np.array([0.0, 1.0, 2.0, 0.5, 0.0, 3.0], "float32")
    loss = float(model.compute_loss(x=codes, y_pred=model(codes), sample_weight=weights))
    nats_per_code = -model.log_prob(codes).astype("float64") / 12
    assert math.isclose(loss, (weights * nats_per_code).sum() / weights.sum(), rel_tol=1e-5)
