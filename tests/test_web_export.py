"""`vqgen export --format web` in a real browser: headless Chromium (Debian's package, driven by
Playwright) loads the page from a local static server, samples over the cached step
(noise_sampler.js), and for one Gumbel noise tensor its codes equal NumPy's `sample_raster` over
ONNX Runtime's cached step in Python and the SavedModel's `sample_from_noise_guided`, for a PixelCNN
and a Transformer prior, conditional, guidance 2.5; for a MaskGIT (its parallel decoding over
`prior_logits`, guidance 2) they equal `maskgit_sample_with_noise`'s and the SavedModel's."""

import hashlib
import os

import numpy as np
import pytest
import tensorflow as tf

import prior
import vqgen
from vqgen.export import export_saved_model
from vqgen.noise_sampler import gumbel_noise, maskgit_noise
from vqgen.portable_export import load_portable
from vqgen.web_browser import find_chromium, open_page
from vqgen.web_export import PAGE_FOLDER, RUNTIME_FOLDER, export_web, runtime_checksums

pytest.importorskip("tf2onnx")
pytest.importorskip("onnxruntime")


PRIORS = {  # tiny class-conditional priors trained with label dropout (so guidance applies)
    "pixelcnn": lambda: prior.PixelCNN(
        num_embeddings=16, grid_shape=(7, 7), num_layers=3, filters=8, num_classes=10, label_dropout=0.1
    ),
    "transformer": lambda: prior.Transformer(
        num_embeddings=16,
        grid_shape=(7, 7),
        num_layers=1,
        hidden_dim=8,
        num_heads=2,
        intermediate_dim=16,
        num_classes=10,
        label_dropout=0.1,
    ),
    "maskgit": lambda: prior.MaskGIT(
        16,
        (7, 7),
        num_layers=1,
        hidden_dim=8,
        num_heads=2,
        intermediate_dim=16,
        num_classes=10,
        label_dropout=0.1,
    ),
}
GUIDANCE = {"pixelcnn": 2.5, "transformer": 2.5, "maskgit": 2.0}


def random_models(kind="pixelcnn", seed=0):
    """A tiny VQ-VAE and a `PRIORS[kind]` prior with random weights."""
    rng = np.random.default_rng(seed)
    vqvae = vqgen.VQVAE(
        input_shape=(28, 28, 1),
        num_embeddings=16,
        embedding_dim=4,
        hidden_channels=8,
        residual_channels=4,
        num_residual_blocks=1,
    )
    prior_model = PRIORS[kind]()
    if not vqvae.built:  # a VQVAE given its input shape builds itself
        vqvae.build((None, 28, 28, 1))
    if not prior_model.built:
        prior_model.build()
    for model in (vqvae, prior_model):
        model.set_weights(
            [rng.normal(scale=0.3, size=w.shape).astype("float32") for w in model.get_weights()]
        )
    return vqvae, prior_model


@pytest.fixture(scope="module", params=sorted(PRIORS))
def exports(request, tmp_path_factory):
    """The SavedModel and the web export of the same random models, and the prior's `PRIORS` name, for
    each prior of `PRIORS`."""
    vqvae, prior_model = random_models(request.param)
    folder = tmp_path_factory.mktemp(request.param)
    saved = tf.saved_model.load(export_saved_model(str(folder / "saved_model"), vqvae, prior_model))
    return saved, export_web(str(folder / "web"), vqvae, prior_model), request.param


@pytest.fixture(scope="module")
def page(exports):
    """The export's page, loaded in headless Chromium from a local server."""
    if find_chromium() is None:
        pytest.skip("Chromium not found (apt-get install chromium): the page is not tested in a browser")
    pytest.importorskip("playwright")
    with open_page(exports[1]) as page:
        yield page
    assert page.errors == []


def test_the_export_carries_the_page_and_the_pinned_runtime(exports):
    _, folder, _ = exports
    for name in ("index.html", "page.js", "noise_sampler.js", "prior_logits.onnx", "decode.onnx"):
        assert os.path.isfile(os.path.join(folder, name)), name
    checksums = runtime_checksums(os.path.join(folder, RUNTIME_FOLDER))
    assert set(checksums) == {"ort.wasm.bundle.min.mjs", "ort-wasm-simd-threaded.wasm"}
    for name, digest in checksums.items():  # what the page loads is what the checksums name
        with open(os.path.join(folder, RUNTIME_FOLDER, name), "rb") as stream:
            assert hashlib.sha256(stream.read()).hexdigest() == digest, name
    assert checksums == runtime_checksums(os.path.join(PAGE_FOLDER, RUNTIME_FOLDER))


@pytest.mark.slow
def test_the_page_samples_the_codes_of_python_and_the_saved_model_for_the_same_noise(exports, page):
    saved, folder, kind = exports
    onnx = load_portable(folder)  # the folder is also an ONNX export
    num, temperature, guidance = 4, 0.8, GUIDANCE[kind]
    labels = np.array([3, 0, 7, 9], np.int32)
    if kind == "maskgit":  # the noise of the page's decoding steps: the export's default steps
        noise = maskgit_noise(num, onnx.config["sample_steps"], (7, 7), 16, seed=5)
    else:
        noise = {"gumbel": gumbel_noise(num, (7, 7), 16, seed=5)}
    expected = saved.signatures["sample_from_noise_guided"](
        **{name: tf.constant(value) for name, value in noise.items()},
        temperature=tf.constant(temperature),
        labels=tf.constant(labels),
        guidance=tf.constant(guidance),
    )["codes"].numpy()
    assert len(np.unique(expected)) > 3 and (expected < 16).all()  # noise-driven draws, all decoded
    np.testing.assert_array_equal(
        onnx.sample(**noise, temperature=temperature, labels=labels, guidance=guidance), expected
    )
    options = {"num": num, "labels": labels.tolist(), "temperature": temperature, "guidance": guidance}
    options["noise"] = noise["gumbel"].ravel().tolist()
    if kind == "maskgit":
        options["confidenceNoise"] = noise["confidence_gumbel"].ravel().tolist()
    codes = page.evaluate("options => window.vqgenSample(options)", options)
    np.testing.assert_array_equal(np.reshape(codes, (num, 7, 7)), expected)


@pytest.mark.slow
def test_pressing_sample_draws_the_decoded_grid(page, tmp_path):
    page.select_option("#class", "each")
    page.fill("#guidance", "2")
    page.fill("#count", "9")
    page.click("#sample")
    page.wait_for_function("document.getElementById('status').textContent.startsWith('Sampled 9 grids')")
    size = page.evaluate("[document.getElementById('grid').width, document.getElementById('grid').height]")
    assert size == [3 * 28 * 5, 3 * 28 * 5]  # 3 x 3 tiles of 28 pixels, scaled up to fit 448
    # The decoder's random weights give grey-level images: the canvas is not one flat colour.
    shades = page.evaluate(
        """() => {
            const canvas = document.getElementById('grid');
            const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
            return new Set(pixels.filter((_, i) => i % 4 === 0)).size;
        }"""
    )
    assert shades > 10


def test_a_web_export_without_a_prior_is_refused(tmp_path):
    vqvae, _ = random_models("pixelcnn")
    with pytest.raises(ValueError, match="samples from a prior"):
        export_web(str(tmp_path / "web"), vqvae, None)
    assert not os.path.exists(tmp_path / "web")


@pytest.mark.slow
def test_vqgen_export_format_web_writes_the_page(tiny_run, tmp_path):
    from vqgen.cli import main

    out = str(tmp_path / "web")
    assert main(["export", "--run", tiny_run, "--out", out, "--format", "web"]) == 0
    assert os.path.isfile(os.path.join(out, "index.html"))
    exported = load_portable(out)
    assert exported.config["web_page"]["sampler"] == "noise_sampler.js"
    labels = np.arange(2, dtype=np.int32)
    assert exported.sample(gumbel_noise(2, (7, 7), 16, seed=0), 1.0, labels).shape == (2, 7, 7)
