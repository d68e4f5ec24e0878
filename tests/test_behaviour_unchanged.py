"""Behaviour pinned across the round-two restructuring (issue 22): arrays recorded at commit 94ec57f.

`tests/data/behaviour/` holds tiny models saved by that commit's code (`.keras` files: a stage 1 of
each quantizer after four training steps, and a conditional PixelCNN, Transformer and MaskGIT with
seeded weights) and `expected.npz`, the arrays that code produced from them with fixed seeds: the
stage-1 codes and reconstructions of held-back images and the losses of two further training steps;
each prior's grids sampled plain, guided, inpainted, cached and full, and driven by given noise
(in-graph and the NumPy loop of the portable exports).

The test loads those files with today's code (so old `.keras` files must still load) and recomputes
every array. Codes and grids must be identical; inference outputs too; the losses of further
training steps agree to 1e-5 (a restructured step may sum the same terms in another order).

Recorded once with `python tests/test_behaviour_unchanged.py --record` on the starting commit;
re-recording on later code would defeat the test.
"""

import pathlib
import sys

import keras
import numpy as np
import pytest

import prior  # noqa: F401  (registers the prior classes for loading)
import vqgen  # noqa: F401  (registers the stage-1 classes for loading)
from prior import sampling
from vqgen import noise_sampler
from vqgen.portable_export import prior_logits

FOLDER = pathlib.Path(__file__).parent / "data" / "behaviour"
EXPECTED = FOLDER / "expected.npz"
QUANTIZERS = ("vq", "fsq", "rvq")
PRIORS = ("pixelcnn", "transformer", "maskgit")
NUM_CLASSES = 3
GRID = (3, 4)
K = 6


def _images(seed, count):
    """Ramps of random direction and offset plus a little noise: images whose codes differ."""
    generator = np.random.default_rng(seed)
    y, x = np.mgrid[0:16, 0:16] / 15.0
    slopes = generator.uniform(-1, 1, (count, 2, 1, 1))
    offsets = generator.uniform(0, 1, (count, 1, 1))
    ramps = offsets + slopes[:, 0] * x + slopes[:, 1] * y + 0.05 * generator.standard_normal((count, 16, 16))
    return np.clip(ramps, 0, 1).astype(np.float32)[..., None]


def _build_stage1(kind):
    """A tiny stage 1 of `kind`, trained four steps (recording only)."""
    import tensorflow as tf

    keras.utils.set_random_seed(1)
    model = vqgen.VQVAE(
        input_shape=(16, 16, 1),
        num_embeddings=8,
        embedding_dim=4,
        downsample=4,
        hidden_channels=8,
        residual_channels=4,
        num_residual_blocks=1,
        quantizer=kind,
        levels=[3, 3, 4],
        num_quantizers=2,
        quantizer_dropout=0.5,
        restart_after_steps=2,
        init_from_data=True,
        seed=3,
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    model.fit(tf.constant(_images(0, 32)), epochs=1, batch_size=8, shuffle=False, verbose=0)
    return model


def _stage1_arrays(kind, model):
    """What a stage 1 computes: codes and reconstructions of held-back images, then two more steps."""
    held = _images(1, 5)
    codes = model.encode(held)
    arrays = {
        f"{kind}_codes": codes,
        f"{kind}_decoded": model.decode(codes),
        f"{kind}_reconstructed": model.reconstruct(held),
    }
    model.compile(optimizer=keras.optimizers.SGD(1e-2))
    keras.utils.set_random_seed(5)
    history = model.fit(_images(2, 16), epochs=2, batch_size=8, shuffle=False, verbose=0).history
    arrays[f"{kind}_further_losses"] = np.array(
        [history["loss"], history["reconstruction_loss"], history["vq_loss"]], np.float64
    )
    arrays[f"{kind}_codes_after"] = model.encode(held)
    return arrays


def _build_prior(kind):
    """A tiny conditional prior with label dropout and seeded N(0, 0.6) weights (recording only)."""
    common = dict(num_embeddings=K, grid_shape=GRID, num_classes=NUM_CLASSES, label_dropout=0.1)
    if kind == "pixelcnn":
        model = prior.PixelCNN(filters=8, num_layers=3, kernel_size=3, **common)
    elif kind == "transformer":
        model = prior.Transformer(hidden_dim=8, num_heads=2, num_layers=2, **common)
    else:
        model = prior.MaskGIT(hidden_dim=8, num_heads=2, num_layers=2, **common)
    model.build()
    generator = np.random.default_rng(11)
    model.set_weights([0.6 * generator.standard_normal(w.shape).astype(w.dtype) for w in model.get_weights()])
    return model


def _prior_arrays(kind, model):
    """Every way of sampling `kind` that exists, with fixed seeds."""
    labels = np.array([0, 1, 2, 1], np.int32)
    mask = np.zeros((4, *GRID), bool)
    mask[:, 1:, 1:] = True
    given = np.random.default_rng(4).integers(0, K, (4, *GRID)).astype(np.int32)
    arrays = {
        f"{kind}_plain": model.sample(4, labels=labels, seed=7),
        f"{kind}_guided": model.sample(4, labels=labels, seed=7, guidance=4.0),
        f"{kind}_hot_topk": model.sample(4, labels=labels, seed=8, temperature=1.7, top_k=3),
        f"{kind}_inpainted": model.inpaint(given, mask, labels=labels, seed=9),
        f"{kind}_inpainted_guided": model.inpaint(given, mask, labels=labels, seed=9, guidance=0.5),
    }
    if kind == "maskgit":
        arrays[f"{kind}_steps3_linear"] = model.sample(4, labels=labels, seed=7, steps=3, schedule="linear")
        return arrays
    import tensorflow as tf

    for method in ("cached", "full"):
        arrays[f"{kind}_plain_{method}"] = model.sample(4, labels=labels, seed=7, method=method)
        arrays[f"{kind}_guided_{method}"] = model.sample(
            4, labels=labels, seed=7, guidance=4.0, method=method
        )
    noise = noise_sampler.gumbel_noise(4, GRID, K, seed=12)
    for name, guidance in (("noise", None), ("noise_guided", 2.0)):
        arrays[f"{kind}_{name}_graph"] = sampling.sample_full_from_noise(
            model,
            tf.constant(noise),
            tf.constant(0.8),
            labels=tf.constant(labels),
            guidance=None if guidance is None else tf.constant(guidance),
        ).numpy()
        arrays[f"{kind}_{name}_numpy"] = noise_sampler.sample_with_noise(
            lambda codes, given_labels: prior_logits(model, codes, given_labels).numpy(),
            noise,
            temperature=0.8,
            labels=labels,
            guidance=1.0 if guidance is None else guidance,
            no_label=NUM_CLASSES,
        )
    return arrays


@pytest.fixture(scope="module")
def expected():
    with np.load(EXPECTED) as arrays:
        return dict(arrays)


@pytest.mark.parametrize("kind", QUANTIZERS)
def test_stage1_gives_the_recorded_arrays(kind, expected):
    model = keras.saving.load_model(FOLDER / f"stage1_{kind}.keras")
    got = _stage1_arrays(kind, model)
    np.testing.assert_array_equal(got[f"{kind}_codes"], expected[f"{kind}_codes"])
    # Images within float rounding: another CPU's vector units round the decoder's sums differently
    # (seen: 3e-8 apart on a machine other than the recording one).
    for name in (f"{kind}_decoded", f"{kind}_reconstructed"):
        np.testing.assert_allclose(got[name], expected[name], rtol=1e-5, atol=1e-6, err_msg=name)
    np.testing.assert_allclose(got[f"{kind}_further_losses"], expected[f"{kind}_further_losses"], rtol=1e-5)
    np.testing.assert_array_equal(got[f"{kind}_codes_after"], expected[f"{kind}_codes_after"])


@pytest.mark.parametrize("kind", PRIORS)
def test_prior_gives_the_recorded_grids(kind, expected):
    model = keras.saving.load_model(FOLDER / f"prior_{kind}.keras")
    got = _prior_arrays(kind, model)
    recorded = sorted(name for name in expected if name.startswith(f"{kind}_"))
    assert sorted(got) == recorded
    for name in recorded:
        np.testing.assert_array_equal(got[name], expected[name], err_msg=name)


def _record():
    """Writes the `.keras` files and `expected.npz` (run once, on the starting commit)."""
    FOLDER.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for kind in QUANTIZERS:
        model = _build_stage1(kind)
        model.save(FOLDER / f"stage1_{kind}.keras")
        arrays |= _stage1_arrays(kind, keras.saving.load_model(FOLDER / f"stage1_{kind}.keras"))
    for kind in PRIORS:
        model = _build_prior(kind)
        model.save(FOLDER / f"prior_{kind}.keras")
        arrays |= _prior_arrays(kind, keras.saving.load_model(FOLDER / f"prior_{kind}.keras"))
    np.savez(EXPECTED, **arrays)
    print(f"recorded {len(arrays)} arrays in {EXPECTED}")


if __name__ == "__main__":
    if sys.argv[1:] != ["--record"]:
        sys.exit("usage: python tests/test_behaviour_unchanged.py --record")
    _record()
