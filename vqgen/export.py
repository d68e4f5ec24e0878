"""Exporting a trained VQ-VAE (and optionally its PixelCNN prior) as a TensorFlow SavedModel.

The SavedModel needs neither `vqgen` nor `prior` to run: `tf.saved_model.load`, `saved_model_cli`
and TensorFlow Serving call its signatures directly.
"""

import json
import os
import tempfile

import tensorflow as tf

import vqgen
from prior import PixelCNN
from vqgen.atomic_file import atomic_path
from vqgen.vqvae import VQVAE

CONFIG_ASSET_NAME = "vqgen_config.json"


def export_saved_model(path, vqvae, prior=None, overwrite=False):
    """Writes `vqvae` (and `prior`) as a SavedModel with serving signatures.

    The exported graph holds the VQ-VAE's encoder, codebook and decoder (van den Oord et al. 2017,
    "Neural Discrete Representation Learning") and, when given, the gated PixelCNN prior with its
    compiled autoregressive sampling loop (the faster sampler, `prior.resolve_sampling_method("auto")`).
    Its signatures are:

    - `encode`: `images` float32 `[batch, H, W, C]` in [0, 1] -> `codes` int32 `[batch, h, w]`.
    - `decode`: `codes` int32 `[batch, h, w]` in `[0, K)` -> `images` float32 `[batch, H, W, C]`.
    - `reconstruct`: `images` -> `images`, `codes`.
    - `sample` (with a prior): `num_samples` int32 scalar >= 1, `temperature` float32 scalar > 0,
      `seed` int64 scalar, and `labels` int32 `[num_samples]` for a class-conditional prior ->
      `images`, `codes`. A seed draws the same codes as `prior.sample(..., seed=seed)` in-process.
    - `serving_default`: `sample` when a prior is exported, else `reconstruct`.

    Bad inputs fail inside the graph with a message naming the expected shape or range. The
    toolkit version and both models' `get_config()` are stored as the asset
    `assets/vqgen_config.json`, readable after loading through `loaded.config_file.asset_path`.
    The export is written to a temporary sibling folder and renamed onto `path` only once it is
    complete, so a failure never leaves a half-written export behind.

    Args:
        path: str or path-like. Folder to write the SavedModel to.
        vqvae: a `vqgen.VQVAE`.
        prior: optional `prior.PixelCNN` trained on `vqvae`'s codes (same `num_embeddings` and
            `grid_shape`).
        overwrite: bool. Replace a non-empty folder at `path`. Defaults to `False`.

    Returns:
        str, the path of the written SavedModel.

    Raises:
        FileExistsError: `path` is a non-empty folder and `overwrite` is False, or `path` is a file.
        ValueError: `vqvae` is not a `VQVAE`, `prior` is not a `PixelCNN`, or the prior's codebook
            size or grid shape differs from the VQ-VAE's.

    Example:
    >>> export_saved_model("exports/digits/1", vqvae, prior)  # doctest: +SKIP
    >>> loaded = tf.saved_model.load("exports/digits/1")  # doctest: +SKIP
    >>> loaded.signatures["sample"](num_samples=tf.constant(4), temperature=tf.constant(1.0),
    ...                             seed=tf.constant(7, tf.int64))["images"].shape  # doctest: +SKIP
    TensorShape([4, 28, 28, 1])
    """
    _check_models(vqvae, prior)
    path = os.fspath(path)
    if os.path.isfile(path):
        raise FileExistsError(f"{path} is a file, not a folder; choose a folder path for the SavedModel.")
    if os.path.isdir(path) and os.listdir(path) and not overwrite:
        raise FileExistsError(
            f"{path} already exists and is not empty; choose another path or pass overwrite=True."
        )
    with tempfile.TemporaryDirectory() as staging:
        config_path = os.path.join(staging, CONFIG_ASSET_NAME)
        with open(config_path, "w", encoding="utf-8") as stream:
            json.dump(_export_config(vqvae, prior), stream, indent=2, sort_keys=True)
        module = _ServingModule(vqvae, prior, tf.saved_model.Asset(config_path))
        signatures = module.signatures()
        with atomic_path(path) as temporary:
            tf.saved_model.save(module, temporary, signatures=signatures)
    return path


def _check_models(vqvae, pixelcnn):
    if not isinstance(vqvae, VQVAE):
        raise ValueError(f"vqvae must be a vqgen.VQVAE. Received: vqvae={type(vqvae).__name__}")
    if pixelcnn is None:
        return
    if not isinstance(pixelcnn, PixelCNN):
        raise ValueError(f"prior must be a prior.PixelCNN or None. Received: prior={type(pixelcnn).__name__}")
    if pixelcnn.num_embeddings != vqvae.num_embeddings or tuple(pixelcnn.grid_shape) != tuple(vqvae.grid_shape):
        raise ValueError(
            f"The prior models {pixelcnn.num_embeddings} codes on {pixelcnn.grid_shape} grids but the "
            f"VQ-VAE makes {vqvae.num_embeddings} codes on {vqvae.grid_shape} grids; export the prior "
            "trained on this VQ-VAE's codes."
        )


def _export_config(vqvae, pixelcnn):
    return {
        "vqgen_version": vqgen.__version__,
        "vqvae": vqvae.get_config(),
        "prior": None if pixelcnn is None else pixelcnn.get_config(),
        "sampling_method": None if pixelcnn is None else pixelcnn.resolve_sampling_method("auto"),
    }


class _ServingModule(tf.Module):
    """The object graph that is saved: both models, the config asset and the signature functions."""

    def __init__(self, vqvae, pixelcnn, config_file):
        super().__init__(name="vqgen_export")
        self.vqvae = vqvae
        self.prior = pixelcnn
        self.config_file = config_file

    def signatures(self):
        """Traces every signature once; returns `{name: concrete function}`."""
        height, width, channels = self.vqvae.image_shape
        rows, cols = self.vqvae.grid_shape
        images = tf.TensorSpec([None, height, width, channels], tf.float32, name="images")
        codes = tf.TensorSpec([None, rows, cols], tf.int32, name="codes")
        signatures = {
            "encode": tf.function(self._encode, autograph=False).get_concrete_function(images),
            "decode": tf.function(self._decode, autograph=False).get_concrete_function(codes),
            "reconstruct": tf.function(self._reconstruct, autograph=False).get_concrete_function(images),
        }
        if self.prior is None:
            signatures["serving_default"] = signatures["reconstruct"]
            return signatures
        scalars = [
            tf.TensorSpec([], tf.int32, name="num_samples"),
            tf.TensorSpec([], tf.float32, name="temperature"),
            tf.TensorSpec([], tf.int64, name="seed"),
        ]
        if self.prior.conditional:
            sample = tf.function(self._sample_conditional, autograph=False).get_concrete_function(
                *scalars, tf.TensorSpec([None], tf.int32, name="labels")
            )
        else:
            sample = tf.function(self._sample, autograph=False).get_concrete_function(*scalars)
        signatures["sample"] = signatures["serving_default"] = sample
        return signatures

    def _encode(self, images):
        return {"codes": self.vqvae.encode_tensor(self._checked_images(images))}

    def _decode(self, codes):
        return {"images": self.vqvae.decode_tensor(self._checked_codes(codes))}

    def _reconstruct(self, images):
        codes = self.vqvae.encode_tensor(self._checked_images(images))
        return {"images": self.vqvae.decode_tensor(codes), "codes": codes}

    def _sample(self, num_samples, temperature, seed):
        return self._sample_conditional(num_samples, temperature, seed, labels=None)

    def _sample_conditional(self, num_samples, temperature, seed, labels):
        finite = tf.debugging.assert_less(
            temperature, float("inf"), message="temperature must be a finite number > 0"
        )
        with tf.control_dependencies([finite]):
            codes = self.prior.sample_codes(
                num_samples, temperature, seed, labels=labels,
                method=self.prior.resolve_sampling_method("auto"),
            )
        return {"images": self.vqvae.decode_tensor(codes), "codes": codes}

    def _checked_images(self, images):
        height, width, channels = self.vqvae.image_shape
        shape = f"images must have shape [batch, {height}, {width}, {channels}]"
        pixels = "images must be float32 pixels in [0, 1] (divide 8-bit images by 255)"
        checks = [
            tf.debugging.assert_equal(tf.shape(images)[1:], [height, width, channels], message=shape),
            tf.debugging.assert_greater_equal(images, 0.0, message=pixels),
            tf.debugging.assert_less_equal(images, 1.0, message=pixels),
        ]
        with tf.control_dependencies(checks):
            return tf.identity(images)

    def _checked_codes(self, codes):
        rows, cols = self.vqvae.grid_shape
        shape = f"codes must have shape [batch, {rows}, {cols}]"
        check = tf.debugging.assert_equal(tf.shape(codes)[1:], [rows, cols], message=shape)
        with tf.control_dependencies([check]):
            return tf.identity(codes)
