"""MaskGIT prior: bidirectionality, masked-only loss, iterative decoding, inpainting, guidance, files."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

import prior
from prior import parallel_decode
from prior.mask_schedule import masked_counts
from prior.sampling import gumbel_noise

K = 7
TINY = dict(num_layers=2, hidden_dim=16, num_heads=2, intermediate_dim=24)


@pytest.fixture(scope="module")
def make_maskgit(randomise_weights):
    """Tiny MaskGITs with every weight redrawn at random: `make_maskgit(grid_shape, ...)`."""

    def make(grid_shape=(3, 4), num_classes=None, seed=0, **kwargs):
        model = prior.MaskGIT(K, grid_shape, num_classes=num_classes, **{**TINY, **kwargs})
        return randomise_weights(model, scale=0.5, seed=seed)

    return make


def numpy_cross_entropy(logits, codes):
    """Nats of each true code under softmax(logits), in float64."""
    logits = logits.astype("float64")
    shifted = logits - logits.max(axis=-1, keepdims=True)
    log_softmax = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    return -np.take_along_axis(log_softmax, codes[..., None], axis=-1)[..., 0]


# ---------------------------------------------------------------------- the network


def test_every_code_changes_the_logits_at_every_position_unlike_the_causal_transformer(make_maskgit):
    model = make_maskgit((3, 3))
    base = np.random.default_rng(1).integers(0, K, size=(1, 3, 3)).astype("int32")
    grids = np.repeat(base, 10, axis=0)
    for position in range(9):
        grids[position + 1].flat[position] = (base.flat[position] + 3) % K
    logits = model(grids).numpy()
    effects = np.abs(logits[1:] - logits[:1]).max(axis=-1).reshape(9, 9)  # [changed, position]
    assert effects.min() > 1e-4  # later codes reach earlier positions too
    causal = prior.Transformer(K, (3, 3), **TINY)
    causal_logits = causal(grids).numpy()
    unseen = np.abs(causal_logits[9] - causal_logits[0]).reshape(9, K)[:8].max()
    assert unseen < 1e-5  # the last code reaches no earlier position (up to rounding across batch rows)


def test_the_mask_token_is_code_k_and_labels_change_the_logits(make_maskgit):
    model = make_maskgit((2, 2), num_classes=3)
    masked = np.full((3, 2, 2), model.mask_id)
    assert model.mask_id == K
    logits = model({"codes": masked, "labels": np.array([0, 1, 2])}).numpy()
    assert logits.shape == (3, 2, 2, K) and np.abs(logits[1] - logits[0]).max() > 1e-3


def test_bidirectional_block_matches_numpy_full_attention(randomise_weights):
    block = prior.TransformerBlock(8, 2, 12, causal=False)
    block.build((None, 5, 8))
    randomise_weights(block, scale=0.5, seed=3)
    x = np.random.default_rng(4).normal(size=(2, 5, 8)).astype("float32")
    (g1, b1), (wqkv, bqkv), (wo, bo), (g2, b2), (w1, c1), (w2, c2) = [
        (block.get_weights()[i], block.get_weights()[i + 1]) for i in range(0, 12, 2)
    ]

    def norm(v, gamma, beta):
        return (v - v.mean(-1, keepdims=True)) / np.sqrt(v.var(-1, keepdims=True) + 1e-5) * gamma + beta

    q, k, v = np.split(norm(x, g1, b1) @ wqkv + bqkv, 3, axis=-1)
    heads = [slice(0, 4), slice(4, 8)]
    attended = []
    for h in heads:
        scores = q[..., h] @ k[..., h].transpose(0, 2, 1) / 2.0  # sqrt(head_dim = 4)
        weights = np.exp(scores - scores.max(-1, keepdims=True))
        attended.append((weights / weights.sum(-1, keepdims=True)) @ v[..., h])
    hidden = x + np.concatenate(attended, axis=-1) @ wo + bo
    pre = norm(hidden, g2, b2) @ w1 + c1
    gelu = 0.5 * pre * (1 + np.vectorize(math.erf)(pre / math.sqrt(2)))
    np.testing.assert_allclose(block(x).numpy(), hidden + gelu @ w2 + c2, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="no incremental step"):
        block.call_with_cache(x[:, :1], block.initial_cache(2, 5), 0)


# ---------------------------------------------------------------------- training


def test_training_masks_follow_the_cosine_ratio_and_the_smallest_noise(make_maskgit):
    model = make_maskgit((3, 4))
    rng = np.random.default_rng(5)
    codes = rng.integers(0, K, size=(6, 3, 4)).astype("int32")
    ratios = np.array([0.0, 0.2, 0.5, 0.7, 0.9, 0.999], "float32")
    noise = rng.uniform(size=(6, 12)).astype("float32")
    masked, mask = (t.numpy() for t in model.mask_codes(codes, ratios, noise))
    for grid in range(6):
        count = max(1, math.ceil(12 * math.cos(math.pi * float(ratios[grid]) / 2)))
        expected = np.zeros(12, bool)
        expected[np.argsort(noise[grid])[:count]] = True
        np.testing.assert_array_equal(mask[grid].reshape(-1), expected)
    np.testing.assert_array_equal(masked, np.where(mask, K, codes))


def test_loss_is_the_cross_entropy_of_masked_positions_only(make_maskgit):
    model = make_maskgit((2, 3))
    rng = np.random.default_rng(6)
    codes = rng.integers(0, K, size=(4, 2, 3)).astype("int32")
    mask = rng.uniform(size=(4, 2, 3)) < 0.5
    mask[0, 0, 0] = True
    logits = rng.normal(size=(4, 2, 3, K)).astype("float32")
    loss = float(model.compute_loss(y=(codes, mask), y_pred=logits))
    assert loss == pytest.approx(numpy_cross_entropy(logits, codes)[mask].mean(), rel=1e-5)
    changed = logits.copy()
    changed[~mask] = rng.normal(size=((~mask).sum(), K)) * 10  # logits where nothing was masked
    assert float(model.compute_loss(y=(codes, mask), y_pred=changed)) == pytest.approx(loss, rel=1e-6)


@pytest.mark.slow
def test_fit_lowers_the_loss_and_logs_masked_bits_per_code():
    keras.utils.set_random_seed(0)
    model = prior.MaskGIT(K, (3, 3), num_classes=2, label_dropout=0.1, **TINY)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    labels = np.arange(72) % 2  # batches of 16 and a short last one of 8
    codes = (np.arange(9).reshape(1, 3, 3) * (labels[:, None, None] + 1)) % K  # two fixed grids
    history = model.fit({"codes": codes, "labels": labels}, epochs=4, batch_size=16, verbose=0).history
    assert history["loss"][-1] < 0.5 * history["loss"][0]
    np.testing.assert_allclose(
        history["masked_bits_per_code"], np.array(history["loss"]) / np.log(2), rtol=1e-5
    )


def test_uniform_logits_give_log2_k_masked_bits_and_log_prob_is_refused(make_maskgit):
    model = make_maskgit((2, 2), num_classes=2)
    model.head.set_weights([np.zeros_like(w) for w in model.head.get_weights()])  # logits all 0
    codes = np.random.default_rng(7).integers(0, K, size=(5, 2, 2))
    assert model.masked_bits_per_code(codes, np.arange(5) % 2, seed=3) == pytest.approx(
        math.log2(K), rel=1e-6
    )
    with pytest.raises(NotImplementedError, match="masked_bits_per_code"):
        model.log_prob(codes, np.arange(5) % 2)


# ---------------------------------------------------------------------- decoding


def masked_left_after_each_step(model, steps, num=2):
    """Mask tokens left after step t = 1..steps of decoding an all-masked grid: the loop run with the
    plan's counts up to step t and the count of step t repeated after it (so nothing more is
    committed), all in one call."""
    T = model.sequence_length
    plan = masked_counts(steps, T)
    plans = [
        np.concatenate([plan[:done], np.repeat(plan[done - 1], steps - done)]) for done in range(1, steps + 1)
    ]
    counts = np.repeat(np.stack(plans), num, axis=0).astype("int32")  # (steps * num, steps)
    state = model._run_decode(np.full((steps * num, T), K, "int32"), counts, 1.0, 0, None, 1.0)
    return (state == K).sum(axis=1).reshape(steps, num), plan


def test_decoding_commits_codes_on_the_schedule(make_maskgit):
    left, plan = masked_left_after_each_step(make_maskgit((4, 4)), steps=5)
    np.testing.assert_array_equal(left, np.repeat(plan[:, None], 2, axis=1))


def test_one_code_per_step_for_rows_times_cols_steps_and_more_steps_refused(make_maskgit):
    model = make_maskgit((2, 3))
    left, _ = masked_left_after_each_step(model, steps=6)
    np.testing.assert_array_equal(left[:, 0], [5, 4, 3, 2, 1, 0])  # one code committed per step
    grids = model.sample(4, seed=1, steps=6)
    assert grids.shape == (4, 2, 3) and grids.dtype == np.int32 and (grids >= 0).all() and (grids < K).all()
    with pytest.raises(ValueError, match=r"steps must be an int in \[1, 6\]"):
        model.sample(1, steps=7)


def test_stub_logits_give_the_forced_grid_whatever_the_steps_and_seed():
    class ForcedCodes(prior.MaskGIT):
        """Logits 1e9 at code (position % K), as KerasHub's sampler tests do."""

        def call(self, inputs, training=None):
            codes = inputs["codes"] if isinstance(inputs, dict) else inputs
            forced = tf.one_hot(tf.range(12) % K, K) * 1e9
            return tf.broadcast_to(tf.reshape(forced, (1, 3, 4, K)), (tf.shape(codes)[0], 3, 4, K))

    model = ForcedCodes(K, (3, 4), **TINY)
    expected = np.arange(12).reshape(3, 4) % K
    for steps, seed in [(1, 0), (4, 1), (12, 2)]:
        np.testing.assert_array_equal(model.sample(2, seed=seed, steps=steps), np.stack([expected] * 2))


def test_a_seed_gives_the_same_grids_and_other_seeds_other_grids(make_maskgit):
    model = make_maskgit((3, 3), num_classes=2)
    first = model.sample(6, labels=1, seed=11)
    np.testing.assert_array_equal(model.sample(6, labels=1, seed=11), first)
    assert (model.sample(6, labels=1, seed=12) != first).any()
    graph = model.sample_codes(tf.constant(6), tf.constant(1.0), tf.constant(11, tf.int64), tf.fill([6], 1))
    np.testing.assert_array_equal(graph.numpy(), first)  # the exporters' entry point: same grids


def test_guidance_one_is_plain_conditional_and_zero_is_the_no_label_class(make_maskgit):
    model = make_maskgit((3, 3), num_classes=3, label_dropout=0.2)
    labels = np.array([0, 1, 2, 1])
    plain = model.sample(4, labels=labels, seed=5)
    exported_one = model.sample_codes(
        tf.constant(4), tf.constant(1.0), tf.constant(5, tf.int64), tf.constant(labels), tf.constant(1.0)
    )
    np.testing.assert_array_equal(exported_one.numpy(), plain)  # the guided graph at scale 1
    no_label = model.sample(4, labels=model.no_label, seed=5)
    np.testing.assert_array_equal(model.sample(4, labels=labels, seed=5, guidance=0.0), no_label)
    assert (model.sample(4, labels=labels, seed=5, guidance=3.0) != plain).any()
    with pytest.raises(ValueError, match="--label-dropout"):
        make_maskgit((3, 3), num_classes=3).sample(2, labels=0, guidance=2.0)


def test_the_seeded_decoding_is_the_noise_decoding_fed_the_seeds_noise(make_maskgit):
    # One loop, two draws: noise made from the seed's streams (step t's draws keyed (seed, t), its
    # confidence noise keyed (seed, -1 - t)) decodes the grids of `sample` with that seed.
    model = make_maskgit((3, 3), num_classes=3, label_dropout=0.2)
    num, steps, seed, labels = 4, 5, tf.constant(8, tf.int64), np.array([0, 1, 2, 1], np.int32)
    gumbel = tf.stack(
        [tf.reshape(gumbel_noise([num * 9, K], seed, t), [num, 3, 3, K]) for t in range(steps)], 1
    )
    confidence_gumbel = tf.stack(
        [tf.reshape(gumbel_noise([num, 9], seed, -1 - t), [num, 3, 3]) for t in range(steps)], 1
    )
    for guidance in (1.0, 2.5):
        expected = model.sample(num, temperature=0.8, labels=labels, seed=8, guidance=guidance, steps=steps)
        decoded = parallel_decode.sample_from_noise(
            model,
            gumbel,
            confidence_gumbel,
            tf.constant(0.8),
            tf.constant(labels),
            None if guidance == 1 else tf.constant(guidance),
        )
        np.testing.assert_array_equal(decoded.numpy(), expected)


# ---------------------------------------------------------------------- inpainting


def test_inpainting_keeps_every_given_code_and_fills_the_rest(make_maskgit):
    model = make_maskgit((3, 4), num_classes=2)
    rng = np.random.default_rng(9)
    codes = rng.integers(0, K, size=(5, 3, 4)).astype("int32")
    mask = rng.uniform(size=(5, 3, 4)) < 0.5
    mask[0] = False  # nothing to re-sample in grid 0
    mask[1] = True  # everything in grid 1
    filled = model.inpaint(codes, mask, labels=np.arange(5) % 2, seed=2, steps=4)
    np.testing.assert_array_equal(filled[~mask], codes[~mask])
    assert filled.dtype == np.int32 and (filled >= 0).all() and (filled < K).all()
    assert (filled[mask] != codes[mask]).any()
    again = model.inpaint(codes, mask, labels=np.arange(5) % 2, seed=2, steps=4)
    np.testing.assert_array_equal(again, filled)


def test_inpainting_with_every_position_given_returns_the_input(make_maskgit):
    model = make_maskgit((2, 2))
    codes = np.random.default_rng(10).integers(0, K, size=(3, 2, 2))
    np.testing.assert_array_equal(model.inpaint(codes, np.zeros((3, 2, 2), bool), seed=0), codes)
    with pytest.raises(ValueError, match="mask must be a bool array"):  # prior.arguments.check_inpaint_mask
        model.inpaint(codes, np.zeros((3, 2, 2), int))


# ---------------------------------------------------------------------- files and checks


@pytest.mark.parametrize("num_classes, label_dropout", [(None, 0.0), (3, 0.1)])
def test_keras_file_round_trip_gives_identical_logits_and_samples(
    make_maskgit, tmp_path, num_classes, label_dropout
):
    model = make_maskgit((3, 3), num_classes, label_dropout=label_dropout)
    path = str(tmp_path / "maskgit.keras")
    model.save(path)
    restored = keras.models.load_model(path)
    assert isinstance(restored, prior.MaskGIT) and restored.get_config() == model.get_config()
    codes = np.random.default_rng(8).integers(0, K + 1, size=(4, 3, 3)).astype("int32")
    labels = None if num_classes is None else np.array([0, 1, 2, 0])
    inputs = codes if labels is None else {"codes": codes, "labels": labels}
    np.testing.assert_array_equal(restored(inputs).numpy(), model(inputs).numpy())
    sample_labels = None if num_classes is None else 1
    np.testing.assert_array_equal(
        restored.sample(2, labels=sample_labels, seed=4), model.sample(2, labels=sample_labels, seed=4)
    )


def test_get_config_round_trip_and_settings_defaults():
    model = prior.MaskGIT(K, (2, 3), num_classes=5)
    assert prior.MaskGIT.from_config(model.get_config()).get_config() == model.get_config()
    defaults = prior.MaskGITSettings()
    assert {name: model.get_config()[name] for name in vars(defaults)} == vars(defaults)
    assert keras.saving.get_registered_name(prior.MaskGIT) == "prior>MaskGIT"


def test_bad_arguments_are_refused(make_maskgit):
    model = make_maskgit((2, 2))
    with pytest.raises(ValueError, match="num_layers"):
        prior.MaskGIT(K, (2, 2), num_layers=0)
    with pytest.raises(ValueError, match="num_heads"):
        prior.MaskGIT(K, (2, 2), hidden_dim=30, num_heads=4)
    with pytest.raises(ValueError, match="schedule must be one of"):
        model.sample(1, schedule="exponential")
    with pytest.raises(ValueError, match="temperature"):
        model.sample(1, temperature=0.0)
    with pytest.raises(ValueError, match="unconditional"):
        model.sample(1, guidance=2.0)
    with pytest.raises(ValueError, match="top_k"):
        model.sample(1, top_k=K + 1)


def test_top_1_draws_the_argmax_whatever_the_temperature(make_maskgit):
    # The temperature shapes only the draws (the confidences use the untempered log-probabilities),
    # and top_k=1 leaves a single code to draw, so the grids cannot depend on it.
    model = make_maskgit((2, 3))
    greedy = model.sample(3, seed=0, top_k=1, steps=3, temperature=0.5)
    np.testing.assert_array_equal(model.sample(3, seed=0, top_k=1, steps=3, temperature=50.0), greedy)
    assert (model.sample(3, seed=0, steps=3, temperature=50.0) != greedy).any()
