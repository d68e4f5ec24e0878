"""Exporting a VQ-VAE and its prior as a static web page that samples in the browser.

`export_web` writes the ONNX export of `vqgen.portable_export` (encode, decode, prior_logits, a
raster-order prior's cached step prior_start, prior_step and prior_row, noise_sampler.py,
vqgen_config.json) and beside it a page that needs no build step and no network:

    index.html          the page: pick a class, a temperature and a guidance scale, press "Sample"
    page.js             loads the models, samples, decodes and draws the grid in a canvas
    noise_sampler.js    the JavaScript twin of `vqgen.noise_sampler` (the same loops and noise layout):
                        the raster loop over the cached step, MaskGIT's decoding over prior_logits
    onnxruntime-web/    onnxruntime-web's WebAssembly build (`ONNXRUNTIME_WEB_VERSION`, from npm, MIT
                        licensed): ort.wasm.bundle.min.mjs and ort-wasm-simd-threaded.wasm

Serve the folder with any static file server (browsers do not run a module page from `file://`), e.g.
`python -m http.server -d DIR`, and open it. The page also answers
`window.vqgenSample({noise, confidenceNoise, num, labels, temperature, guidance})` (after
`await window.vqgenReady`) with the sampled codes, so noise drawn elsewhere (flat, in the layout of the
config's "noise"; `confidenceNoise` a MaskGIT's `confidence_gumbel`, in its default `sample_steps`) gives
the same grid as `noise_sampler.py`.
The folder is also an ONNX export: `vqgen.portable_export.load_portable` reads it.
"""

import json
import os
import shutil
import tempfile

from vqgen.export import check_export_path
from vqgen.portable_export import CONFIG_FILE, export_portable
from vqgen.runs.atomic_file import atomic_path
from vqgen.runs.code_shards import file_hash
from vqgen.storage import copy_folder

ONNXRUNTIME_WEB_VERSION = "1.30.0"
PAGE_FOLDER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "web_page")
RUNTIME_FOLDER = "onnxruntime-web"
SHIPPED_RUNTIME = os.path.join(PAGE_FOLDER, RUNTIME_FOLDER)
PAGE_FILES = ("index.html", "page.js", "noise_sampler.js")


def runtime_checksums(folder=SHIPPED_RUNTIME):
    """The SHA-256 of each onnxruntime-web file the page needs, as its `SHA256SUMS` lists them.

    Args:
        folder: str. The folder holding `SHA256SUMS`; defaults to the one shipped with vqgen.

    Returns:
        dict `file name -> hex digest`.

    Example:
    >>> sorted(runtime_checksums())
    ['ort-wasm-simd-threaded.wasm', 'ort.wasm.bundle.min.mjs']
    """
    with open(os.path.join(folder, "SHA256SUMS"), encoding="utf-8") as stream:
        return {name: digest for digest, name in (line.split() for line in stream if line.strip())}


def export_web(path, vqvae, prior, overwrite=False):
    """Writes the ONNX export of `vqvae` and `prior` with a page that samples it in the browser.

    Args:
        path: str or path-like. The folder to write (atomically).
        vqvae: a `vqgen.VQVAE`.
        prior: a prior trained on `vqvae`'s codes that `export_portable` accepts (the PixelCNN, the
            Transformer, MaskGIT); the page samples, so it is required.
        overwrite: bool. Replace a non-empty folder at `path`. Defaults to `False`.

    Returns:
        str, `path`.

    Raises:
        ValueError: no prior, or models as `export_portable` refuses them.
        FileExistsError: `path` is a file, or a non-empty folder and `overwrite` is False.
        ImportError: tf2onnx is not installed (`pip install -e '.[export]'`).
        RuntimeError: a shipped onnxruntime-web file does not match its SHA-256 (a broken install:
            reinstall vqgen, or run scripts/fetch_onnxruntime_web.py).

    Example:
    >>> export_web("exported/digits-web", vqvae, prior)  # doctest: +SKIP
    """
    if prior is None:
        raise ValueError("the web page samples from a prior: export a run whose prior is trained")
    path = os.fspath(path)
    check_export_path(path, overwrite)
    runtime = SHIPPED_RUNTIME
    for name, digest in runtime_checksums(runtime).items():
        if file_hash(os.path.join(runtime, name)) != digest:
            raise RuntimeError(
                f"{os.path.join(runtime, name)} does not match its SHA-256 in SHA256SUMS; reinstall vqgen "
                "or run scripts/fetch_onnxruntime_web.py"
            )
    with tempfile.TemporaryDirectory() as staging:
        folder = export_portable(os.path.join(staging, "export"), vqvae, prior, format="onnx")
        for name in PAGE_FILES:
            shutil.copyfile(os.path.join(PAGE_FOLDER, name), os.path.join(folder, name))
        shutil.copytree(runtime, os.path.join(folder, RUNTIME_FOLDER))
        config_file = os.path.join(folder, CONFIG_FILE)
        with open(config_file, encoding="utf-8") as stream:
            config = json.load(stream)
        config["web_page"] = {"onnxruntime_web": ONNXRUNTIME_WEB_VERSION, "sampler": "noise_sampler.js"}
        with open(config_file, "w", encoding="utf-8") as stream:
            json.dump(config, stream, indent=2, sort_keys=True)
        with atomic_path(path, last_file=CONFIG_FILE) as temporary:
            copy_folder(folder, temporary)
    return path
