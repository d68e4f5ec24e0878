"""prior.sampling: the draws, the raster loop with the full-pass and cached steps (cached == full),
the method choice, and PixelCNN.sample / sample_codes over them: seeds, temperature, top_k, labels."""

import numpy as np
import pytest
import tensorflow as tf

import prior
from prior import sampling

METHODS = ["full", "cached"]


@pytest.fixture(scope="module")
def randomised_prior(randomise_weights):
    """Makes small priors with random weights: `randomised_prior(num_embeddings, grid_shape, ...)`."""

    def make(num_embeddings=5, grid_shape=(3, 4), num_classes=None, kernel_size=3, seed=0):
        model = prior.PixelCNN(
            num_embeddings,
            grid_shape,
            num_classes=num_classes,
            num_layers=2,
            filters=8,
            kernel_size=kernel_size,
        )
        return randomise_weights(model, scale=0.7, seed=seed)

    return make


def greedy_reference(model, num, labels=None):
    """Argmax decoding by a plain Python loop: one model call per position."""
    rows, cols = model.grid_shape
    grids = np.zeros((num, rows, cols), "int32")
    smallest_gap = np.inf
    for row in range(rows):
        for col in range(cols):
            inputs = grids if labels is None else {"codes": grids, "labels": labels}
            logits = model(inputs).numpy()[:, row, col]
            grids[:, row, col] = np.argmax(logits, axis=-1)
            top_two = np.sort(logits, axis=-1)[:, -2:]
            smallest_gap = min(smallest_gap, float((top_two[:, 1] - top_two[:, 0]).min()))
    return grids, smallest_gap


@pytest.fixture(scope="module")
def unconditional(randomised_prior):
    return randomised_prior()


@pytest.fixture(scope="module")
def conditional(randomised_prior):
    return randomised_prior(num_classes=3, seed=2)


@pytest.mark.parametrize("method", METHODS)
def test_same_seed_same_grids_and_different_seeds_differ(unconditional, method):
    first = unconditional.sample(4, seed=7, method=method)
    assert first.dtype == np.int32 and first.shape == (4, 3, 4)
    assert first.min() >= 0 and first.max() < 5
    np.testing.assert_array_equal(unconditional.sample(4, seed=7, method=method), first)
    assert not np.array_equal(unconditional.sample(4, seed=8, method=method), first)
    assert not np.array_equal(unconditional.sample(4, method=method), unconditional.sample(4, method=method))


@pytest.mark.slow
@pytest.mark.parametrize("method", METHODS)
def test_low_temperature_and_top_1_give_the_greedy_grid(unconditional, method):
    greedy, smallest_gap = greedy_reference(unconditional, 3)
    # Gumbel noise is at most ~21 * temperature: the greedy choice is unambiguous.
    assert smallest_gap > 21 * 1e-4
    cold = unconditional.sample(3, temperature=1e-4, seed=3, method=method)
    np.testing.assert_array_equal(cold, greedy)
    top_1 = unconditional.sample(3, temperature=1.0, top_k=1, seed=4, method=method)
    np.testing.assert_array_equal(top_1, greedy)


@pytest.mark.parametrize("method", METHODS)
def test_conditional_sampling_uses_the_labels(conditional, method):
    labels = np.array([0, 1, 2], "int32")
    greedy, smallest_gap = greedy_reference(conditional, 3, labels)
    assert smallest_gap > 21 * 1e-4
    assert len({grid.tobytes() for grid in greedy}) == 3  # labels matter
    cold = conditional.sample(3, temperature=1e-4, labels=labels, seed=5, method=method)
    np.testing.assert_array_equal(cold, greedy)
    same_class = conditional.sample(3, temperature=1e-4, labels=2, seed=5, method=method)
    np.testing.assert_array_equal(same_class, np.repeat(greedy[2:], 3, axis=0))


def fixed_distribution_prior(randomised_prior, probabilities):
    """A 1x1-grid prior whose logits are log(probabilities) whatever the input."""
    model = randomised_prior(num_embeddings=len(probabilities), grid_shape=(1, 1))
    model.head_logits.set_weights(
        [np.zeros_like(model.head_logits.kernel.numpy()), np.log(probabilities).astype("float32")]
    )
    return model


@pytest.mark.parametrize("method", METHODS)
def test_draws_follow_softmax_of_logits_over_temperature_within_top_k(randomised_prior, method):
    probabilities = np.array([0.1, 0.2, 0.3, 0.4])
    model = fixed_distribution_prior(randomised_prior, probabilities)
    count = 2000
    tolerance = 4 * np.sqrt(0.25 / count)  # 4 standard deviations
    cases = [
        (dict(temperature=1.0), probabilities),
        (dict(temperature=0.5), probabilities**2 / (probabilities**2).sum()),
        (dict(temperature=1.0, top_k=2), np.array([0, 0, 3, 4]) / 7),
    ]
    for seed, (options, expected) in enumerate(cases):
        codes = model.sample(count, seed=seed, method=method, **options).ravel()
        frequencies = np.bincount(codes, minlength=4) / count
        np.testing.assert_allclose(frequencies, expected, atol=tolerance)


def test_draw_codes_is_a_pure_function_of_seed_and_step():
    logits = tf.math.log(tf.fill([64, 4], 0.25))
    seed = tf.constant(3, tf.int64)
    first = sampling.draw_codes(logits, tf.constant(1.0), seed, 5).numpy()
    np.testing.assert_array_equal(sampling.draw_codes(logits, tf.constant(1.0), seed, 5).numpy(), first)
    assert not np.array_equal(sampling.draw_codes(logits, tf.constant(1.0), seed, 6).numpy(), first)
    compiled = tf.function(sampling.draw_codes, jit_compile=True)
    np.testing.assert_array_equal(compiled(logits, tf.constant(1.0), seed, tf.constant(5)).numpy(), first)


def test_noise_driven_loop_given_the_seeded_noise_draws_the_seeded_grids(conditional):
    # The Gumbel noise draw_codes makes for (seed, step), given as input: the same grids as sample_full.
    num, temperature, seed = 5, tf.constant(0.8), tf.constant(11, tf.int64)
    rows, cols = conditional.grid_shape
    keys = [tf.stack([seed, tf.constant(step, tf.int64)]) for step in range(rows * cols)]
    shape = [num, conditional.num_embeddings]
    uniform = tf.stack([sampling._open_unit_uniform(shape, key) for key in keys], axis=1)
    gumbel = tf.reshape(-tf.math.log(-tf.math.log(uniform)), [num, rows, cols, conditional.num_embeddings])
    labels = tf.constant([0, 1, 2, 0, 1])
    from_noise = sampling.sample_full_from_noise(conditional, gumbel, temperature, labels).numpy()
    seeded = conditional.sample_codes(tf.constant(num), temperature, seed, labels, method="full").numpy()
    np.testing.assert_array_equal(from_noise, seeded)
    # the same noise through the PixelCNN's own (cached) step in the one raster loop
    noise_cached = sampling.sample_raster(
        conditional,
        sampling.noise_draw(gumbel, temperature),
        tf.constant(num),
        conditional.grid_shape,
        labels,
    ).numpy()
    np.testing.assert_array_equal(noise_cached, seeded)


def test_top_k_draws_are_among_the_k_most_likely_codes(unconditional):
    grids = unconditional.sample(6, temperature=3.0, top_k=2, seed=9)
    logits = unconditional(grids).numpy()  # teacher-forced: logits seen at each draw
    second_largest = np.sort(logits, axis=-1)[..., -2]
    drawn = np.take_along_axis(logits, grids[..., None], axis=-1)[..., 0]
    assert np.all(drawn >= second_largest)


@pytest.mark.parametrize(
    "grid_shape, kernel_size, num_classes, options",
    [
        ((4, 5), 3, None, dict(temperature=1.0)),
        ((3, 6), 5, 3, dict(temperature=0.7, top_k=3)),
        ((5, 2), 5, None, dict(temperature=1.5, top_k=4)),
        ((1, 6), 7, None, dict(temperature=1.0)),
        ((6, 1), 3, 3, dict(temperature=1.0, top_k=2)),
    ],
)
def test_cached_sampler_reproduces_the_full_sampler(
    randomised_prior, grid_shape, kernel_size, num_classes, options
):
    model = randomised_prior(
        num_embeddings=6, grid_shape=grid_shape, num_classes=num_classes, kernel_size=kernel_size
    )
    labels = None if num_classes is None else np.array([0, 1, 2, 1])
    for seed in (0, 1, 2):
        full = model.sample(4, labels=labels, seed=seed, method="full", **options)
        cached = model.sample(4, labels=labels, seed=seed, method="cached", **options)
        np.testing.assert_array_equal(cached, full)


def test_cached_sampler_reproduces_the_full_sampler_at_the_default_depth(randomise_weights):
    # num_layers=None on 7x7 with kernel 3: the 6 blocks that see the whole grid.
    model = prior.PixelCNN(6, (7, 7), num_classes=2, filters=4, kernel_size=3)
    assert model.num_layers == 6
    randomise_weights(model, scale=0.5, seed=7)
    full = model.sample(3, labels=np.array([0, 1, 1]), seed=4, method="full")
    cached = model.sample(3, labels=np.array([0, 1, 1]), seed=4, method="cached")
    np.testing.assert_array_equal(cached, full)


def test_auto_method_uses_the_cached_sampler(unconditional):
    # Measured rule: the cached sampler is faster on every grid size.
    assert sampling.resolve_sampling_method("auto") == "cached"
    assert unconditional.resolve_sampling_method("auto") == "cached"
    assert [sampling.resolve_sampling_method(method) for method in ("cached", "full")] == ["cached", "full"]
    with pytest.raises(ValueError, match="method must be one of"):
        sampling.resolve_sampling_method("fast")
    np.testing.assert_array_equal(
        unconditional.sample(2, seed=13), unconditional.sample(2, seed=13, method="cached")
    )


def test_sample_codes_in_a_graph_matches_sample(conditional):
    @tf.function
    def exported(num_samples, temperature, seed, labels):
        return conditional.sample_codes(num_samples, temperature, seed, labels=labels)

    labels = np.array([2, 0], "int32")
    graph_grids = exported(tf.constant(2), tf.constant(0.9), tf.constant(11, tf.int64), labels)
    assert graph_grids.dtype == tf.int32 and graph_grids.shape == (2, 3, 4)
    np.testing.assert_array_equal(
        graph_grids.numpy(), conditional.sample(2, temperature=0.9, labels=labels, seed=11)
    )


@pytest.mark.parametrize(
    "arguments, message",
    [
        (dict(num_samples=0), "num_samples must be >= 1"),
        (dict(temperature=0.0), "temperature must be > 0"),
        (dict(top_k=0), "top_k must be >= 1"),
        (dict(top_k=6), "top_k must be <= num_embeddings"),
    ],
)
def test_sample_codes_asserts_on_bad_tensors(unconditional, arguments, message):
    values = {**dict(num_samples=2, temperature=1.0, seed=0), **arguments}
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        unconditional.sample_codes(
            tf.constant(values["num_samples"]),
            tf.constant(values["temperature"]),
            tf.constant(values["seed"], tf.int64),
            top_k=None if "top_k" not in values else tf.constant(values["top_k"]),
        )


@pytest.mark.parametrize(
    "arguments, message",
    [
        (dict(num=0), "num must be an int >= 1"),
        (dict(num=2.0), "num must be an int >= 1"),
        (dict(temperature=0.0), "temperature must be a finite number > 0"),
        (dict(temperature=-1.0), "temperature must be a finite number > 0"),
        (dict(temperature=float("nan")), "temperature must be a finite number > 0"),
        (dict(temperature=1e-50), "temperature must be a finite number > 0"),
        (dict(temperature=1e40), "temperature must be a finite number > 0"),
        (dict(top_k=0), r"top_k must be None or an int in \[1, 5\]"),
        (dict(top_k=6), r"top_k must be None or an int in \[1, 5\]"),
        (dict(seed="7"), "seed must be None or an int64"),
        (dict(seed=2**63), "seed must be None or an int64"),
        (dict(method="fast"), "method must be one of"),
        (dict(labels=[0, 1]), "unconditional"),
    ],
)
def test_sample_rejects_bad_arguments(unconditional, arguments, message):
    with pytest.raises(ValueError, match=message):
        unconditional.sample(**{**dict(num=2), **arguments})


@pytest.mark.parametrize(
    "labels, message",
    [(None, "required"), ([0], "expected 2 labels"), ([0, 3], r"\[0, 3\)"), (-1, r"\[0, 3\)")],
)
def test_sample_rejects_bad_labels(conditional, labels, message):
    with pytest.raises(ValueError, match=message):
        conditional.sample(2, labels=labels)


@pytest.mark.slow
def test_saved_model_wrapping_sample_codes_gives_the_same_grids(conditional, tmp_path):
    class SamplerModule(tf.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        @tf.function(
            input_signature=[
                tf.TensorSpec([], tf.int32),
                tf.TensorSpec([], tf.float32),
                tf.TensorSpec([], tf.int64),
                tf.TensorSpec([None], tf.int32),
            ]
        )
        def sample(self, num_samples, temperature, seed, labels):
            return self.model.sample_codes(num_samples, temperature, seed, labels=labels)

    tf.saved_model.save(SamplerModule(conditional), str(tmp_path / "sampler"))
    restored = tf.saved_model.load(str(tmp_path / "sampler"))
    labels = np.array([1, 2, 0], "int32")
    grids = restored.sample(tf.constant(3), tf.constant(1.0), tf.constant(21, tf.int64), labels)
    np.testing.assert_array_equal(grids.numpy(), conditional.sample(3, labels=labels, seed=21))
    with pytest.raises(tf.errors.InvalidArgumentError, match="temperature must be > 0"):
        restored.sample(tf.constant(3), tf.constant(0.0), tf.constant(21, tf.int64), labels)


class ForcingStep:
    """A stub step: position t is forced (logits one-hot x 1e9) to `(previous + t + bias) % K`,
    `bias` 0 or, with rows, the sum of the previous row's codes (set by `complete_row`)."""

    def __init__(self, num_embeddings, with_rows):
        self.num_embeddings = num_embeddings
        if with_rows:
            self.initial_row_cache = lambda batch: tf.zeros([batch], tf.int32)
            self.complete_row = self._complete_row

    def initial_cache(self, batch):
        return tf.zeros([batch], tf.int32)

    def call_with_cache(self, previous_codes, cache, index, labels=None):
        code = (previous_codes + index + cache) % self.num_embeddings
        return 1e9 * tf.one_hot(code, self.num_embeddings), cache

    def _complete_row(self, row_codes, row_cache, labels=None):
        return row_cache, tf.reduce_sum(row_codes, axis=1)


def forced_grid(num_embeddings, grid_shape, with_rows, given=None):
    """The grid `ForcingStep` forces, by a Python loop (kept codes of `given` where its mask is False)."""
    rows, cols = grid_shape
    grid, previous, bias = np.zeros(grid_shape, int), 0, 0
    for row in range(rows):
        for col in range(cols):
            code = (previous + row * cols + col + bias) % num_embeddings
            if given is not None and not given[1][row, col]:
                code = given[0][row, col]
            grid[row, col] = previous = code
        bias = grid[row].sum() if with_rows else 0
    return grid


@pytest.mark.parametrize("with_rows", [False, True])
def test_raster_loop_feeds_each_drawn_or_kept_code_to_the_next_step(with_rows):
    K, grid_shape = 7, (3, 4)
    draw = sampling.seeded_draw(tf.constant(1.0), tf.constant(0, tf.int64))
    step = ForcingStep(K, with_rows)
    grids = sampling.sample_raster(step, draw, tf.constant(2), grid_shape).numpy()
    np.testing.assert_array_equal(grids, np.stack([forced_grid(K, grid_shape, with_rows)] * 2))
    codes = np.random.default_rng(0).integers(0, K, (2, *grid_shape)).astype("int32")
    mask = np.random.default_rng(1).random((2, *grid_shape)) < 0.5
    inpainted = sampling.sample_raster(
        step, draw, tf.constant(2), grid_shape, codes=tf.constant(codes), mask=tf.constant(mask)
    ).numpy()
    expected = [forced_grid(K, grid_shape, with_rows, (codes[i], mask[i])) for i in range(2)]
    np.testing.assert_array_equal(inpainted, np.stack(expected))
