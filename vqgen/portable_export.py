"""Exporting a VQ-VAE (and its prior) for LiteRT (the former TensorFlow Lite) and ONNX Runtime.

A portable export is a folder of three models without random ops or loops, each traced from the
same Keras objects as the SavedModel (`VQVAE.encode_tensor`, `VQVAE.decode_tensor`, the prior's
`call`), and the NumPy loop that samples with them:

    encode.EXT          images float32 [N, H, W, C] in [0, 1] -> codes int32 [N, h, w]
    decode.EXT          codes -> images
    prior_logits.EXT    codes int32 [N, rows, cols] (+ labels int32 [N]) -> logits float32 [N, rows, cols, K]
    noise_sampler.py    `gumbel_noise`, `sample_with_noise` (a copy of `vqgen.noise_sampler`)
    vqgen_config.json   the vqgen version, both models' configurations, and under "models" each
                        model file's inputs and outputs (names, dtypes, shapes; `signature_listing`)

with EXT `tflite` (LiteRT) or `onnx`. Sampling a grid of `rows * cols` codes calls `prior_logits`
once per position (the full-pass sampler; the SavedModel's cached sampler is a `tf.while_loop` with
XLA, which neither format runs as such). Unlike the SavedModel, the portable models do not check
their inputs: codes outside `[0, K)` give undefined images.

Needs the `export` extra: `pip install -e '.[export]'` (tf2onnx, onnxruntime, ai-edge-litert).
"""

import inspect
import json
import os
import shutil
import tempfile
import types

import tensorflow as tf

from prior.registry import kind_of
from vqgen import noise_sampler
from vqgen.export import (
    build_untrained,
    check_export_path,
    check_models,
    export_config,
    prior_logits,
    signature_listing,
    trace_once,
    underlying_variables,
)
from vqgen.runs.atomic_file import atomic_path
from vqgen.storage import copy_folder

PORTABLE_FORMATS = {"litert": "tflite", "onnx": "onnx"}
ONNX_OPSET = 17
CONFIG_FILE = "vqgen_config.json"


def portable_functions(vqvae, prior=None):
    """The concrete functions a portable export holds, traced once without AutoGraph.

    Args:
        vqvae: a built `vqgen.VQVAE`.
        prior: an optional built prior of the `prior` package trained on its codes.

    Returns:
        dict `name -> (concrete function, list of the models whose variables it reads)` for
        "encode", "decode" and, with a prior, "prior_logits"; each returns a dict of named outputs.
    """
    images = tf.TensorSpec([None, *vqvae.image_shape], tf.float32, name="images")
    codes = tf.TensorSpec([None, *vqvae.code_shape], tf.int32, name="codes")
    functions = {
        "encode": (trace_once(lambda images: {"codes": vqvae.encode_tensor(images)}, images), [vqvae]),
        "decode": (trace_once(lambda codes: {"images": vqvae.decode_tensor(codes)}, codes), [vqvae]),
    }
    if prior is None:
        return functions
    tokens = tf.TensorSpec([None, *prior.grid_shape], tf.int32, name="codes")
    if prior.conditional:
        labels = tf.TensorSpec([None], tf.int32, name="labels")
        logits = trace_once(
            lambda codes, labels: {"logits": prior_logits(prior, codes, labels)}, tokens, labels
        )
    else:
        logits = trace_once(lambda codes: {"logits": prior_logits(prior, codes)}, tokens)
    functions["prior_logits"] = (logits, [prior])
    return functions


def _variable_holder(models):
    """A `tf.Module` tracking the models' underlying `tf.Variable`s (see `export.underlying_variables`)."""
    holder = tf.Module()
    holder.model_variables = underlying_variables(models)
    return holder


def _to_litert(function, models, path):
    converter = tf.lite.TFLiteConverter.from_concrete_functions([function], _variable_holder(models))
    with open(path, "wb") as stream:
        stream.write(converter.convert())


def _to_onnx(function, models, path):
    import tf2onnx

    signature = function.structured_input_signature[0]
    tf2onnx.convert.from_function(
        tf.function(function), input_signature=signature, opset=ONNX_OPSET, output_path=path
    )


def export_portable(path, vqvae, prior=None, format="litert", overwrite=False):
    """Writes a LiteRT or ONNX export of `vqvae` (and `prior`) into the folder `path`, atomically.

    Args:
        path: str or path-like. The folder to write.
        vqvae: a `vqgen.VQVAE`.
        prior: optional prior trained on `vqvae`'s codes whose registry entry allows a portable
            export (`prior.registry`: the PixelCNN and the Transformer; a `prior.MaskGIT` is refused:
            its iterative decoding is not the raster-order loop that `vqgen.noise_sampler` runs
            around `prior_logits`; export it as a SavedModel).
        format: "litert" or "onnx".
        overwrite: bool. Replace a non-empty folder at `path`. Defaults to `False`.

    Returns:
        str, `path`.

    Raises:
        ValueError: an unknown format, a MaskGIT prior, or models as `export_saved_model` refuses them.
        FileExistsError: `path` is a file, or a non-empty folder and `overwrite` is False.
        ImportError: the converter is not installed (`pip install -e '.[export]'`).

    Example:
    >>> export_portable("exported/digits-onnx", vqvae, prior, format="onnx")  # doctest: +SKIP
    """
    if format not in PORTABLE_FORMATS:
        raise ValueError(f"format must be one of {sorted(PORTABLE_FORMATS)}. Received: format={format!r}")
    check_models(vqvae, prior)
    if prior is not None and not kind_of(prior).portable_export:
        raise ValueError(
            f"a {type(prior).__name__} prior cannot be exported as {format}: that export samples in raster "
            "order around one-pass logits (vqgen.noise_sampler), not by iterative decoding; export it "
            "with --format saved_model"
        )
    build_untrained(vqvae, prior)  # the variables must exist before the functions capture them
    path = os.fspath(path)
    check_export_path(path, overwrite)
    convert = _to_litert if format == "litert" else _to_onnx
    extension = PORTABLE_FORMATS[format]
    with tempfile.TemporaryDirectory() as staging:
        folder = os.path.join(staging, "export")
        os.makedirs(folder)
        functions = portable_functions(vqvae, prior)
        for name, (function, models) in functions.items():
            convert(function, models, os.path.join(folder, f"{name}.{extension}"))
        shutil.copyfile(inspect.getsourcefile(noise_sampler), os.path.join(folder, "noise_sampler.py"))
        with open(os.path.join(folder, CONFIG_FILE), "w", encoding="utf-8") as stream:
            config = {**export_config(vqvae, prior), "format": format, "sampling_method": "noise"}
            config["models"] = signature_listing(
                {name: function for name, (function, _) in functions.items()}
            )
            json.dump(config, stream, indent=2, sort_keys=True)
        with atomic_path(path, last_file=CONFIG_FILE) as temporary:
            copy_folder(folder, temporary)
    return path


def load_portable(path):
    """Loads a portable export with its runtime, as NumPy-in, NumPy-out functions.

    Args:
        path: str. A folder written by `export_portable`.

    Returns:
        A namespace with `encode(images)`, `decode(codes)`, `config` (dict) and, with a prior,
        `prior_logits(codes, labels=None)` and `sample(gumbel, temperature=1.0, labels=None,
        guidance=1.0)` (guidance other than 1 for a prior trained with label dropout).

    Example:
    >>> model = load_portable("exported/digits-onnx")  # doctest: +SKIP
    >>> model.decode(model.encode(images)).shape  # doctest: +SKIP
    (16, 28, 28, 1)
    """
    with open(os.path.join(path, CONFIG_FILE), encoding="utf-8") as stream:
        config = json.load(stream)
    extension = PORTABLE_FORMATS[config["format"]]
    run = _litert_function if config["format"] == "litert" else _onnx_function
    loaded = types.SimpleNamespace(config=config)
    encode = run(os.path.join(path, f"encode.{extension}"))
    decode = run(os.path.join(path, f"decode.{extension}"))
    loaded.encode = lambda images: encode(images=images)["codes"]
    loaded.decode = lambda codes: decode(codes=codes)["images"]
    logits_file = os.path.join(path, f"prior_logits.{extension}")
    if os.path.isfile(logits_file):
        logits = run(logits_file)

        def prior_logits_(codes, labels=None):
            inputs = {"codes": codes} if labels is None else {"codes": codes, "labels": labels}
            return logits(**inputs)["logits"]

        loaded.prior_logits = prior_logits_
        # The "no label" class of a prior trained with label dropout is its num_classes
        no_label = config["prior"]["num_classes"] if config["prior"].get("label_dropout", 0) > 0 else None

        def sample(gumbel, temperature=1.0, labels=None, guidance=1.0):
            if guidance != 1 and no_label is None:
                raise ValueError(f"guidance={guidance!r} needs a prior trained with label dropout; use 1")
            return noise_sampler.sample_with_noise(
                prior_logits_, gumbel, temperature, labels, guidance, no_label
            )

        loaded.sample = sample
    return loaded


def _litert_function(model_file):
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_path=model_file).get_signature_runner()
    return lambda **inputs: runner(**inputs)


def _onnx_function(model_file):
    import onnxruntime

    session = onnxruntime.InferenceSession(model_file, providers=["CPUExecutionProvider"])
    outputs = [output.name for output in session.get_outputs()]

    def run(**inputs):
        return dict(zip(outputs, session.run(outputs, inputs)))

    return run
