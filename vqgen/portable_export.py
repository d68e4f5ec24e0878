"""Exporting a VQ-VAE (and its prior) for LiteRT (the former TensorFlow Lite) and ONNX Runtime.

A portable export is a folder of models without random ops or loops, each traced from the same
Keras objects as the SavedModel (`VQVAE.encode_tensor`, `VQVAE.decode_tensor`, the prior's `call`
and its cached step: `initial_cache`, `call_with_cache`, and the PixelCNN's `initial_row_cache`
and `complete_row`, see `vqgen.portable_step`), and the NumPy loop that samples with them:

    encode.EXT          images float32 [N, H, W, C] in [0, 1] -> codes int32 [N, h, w]
    decode.EXT          codes -> images
    prior_start.EXT     batch int32 [] -> the caches before the first position (named tensors)
    prior_step.EXT      previous_codes int32 [N], index int32 [] (+ labels int32 [N]), the position
                        cache -> logits float32 [N, K] of position `index` and the changed caches
    prior_row.EXT       (PixelCNN) row_codes int32 [N, cols] (+ labels), the row cache -> the next
                        row's caches
    prior_logits.EXT    codes int32 [N, rows, cols] (+ labels int32 [N]) -> logits float32 [N, rows, cols, K]
    noise_sampler.py    `gumbel_noise`, `sample_raster` over `CachedStep` or `FullPassStep`, MaskGIT's
                        `maskgit_noise` and `maskgit_sample_with_noise` (a copy of `vqgen.noise_sampler`)
    vqgen_config.json   the vqgen version, both models' configurations, the noise layout ("noise",
                        `vqgen.export.noise_layout`) and under "models" each model file's inputs and
                        outputs (names, dtypes, shapes with a free batch size; `signature_listing`),
                        the cache tensors among them

with EXT `tflite` (LiteRT) or `onnx`. Sampling a raster-order prior's grid runs the raster loop of
`prior.sampling.sample_raster` in NumPy: one `prior_step` call per position (and one `prior_row`
per row), the caches passed in and out as arrays, as the SavedModel's cached sampler carries them
through its `tf.while_loop` (which neither format runs as such); `load_portable` keeps a LiteRT
step's caches inside its interpreter instead (`LiteRTCachedStep`). `prior_logits`, one full pass, is
kept for checking: `load_portable(...).sample(..., method="full")` calls it once per position.
A MaskGIT has no cached step: its `prior_logits` reads codes in `[0, K]` (`K` its mask token) and
its decoding calls it once per step (`noise_sampler.maskgit_sample_with_noise`).
Unlike the SavedModel, the portable models do not check their inputs: codes outside `[0, K)` give
undefined images. The ONNX conversion adds the ops tf2onnx lacks (`vqgen.onnx_ops`).

Needs the `export` extra: `pip install -e '.[export]'` (tf2onnx, onnxruntime, ai-edge-litert).
"""

import inspect
import json
import os
import shutil
import tempfile
import types

import tensorflow as tf

from prior.registry import PARALLEL, kind_of
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
from vqgen.portable_step import step_functions
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
    if kind_of(prior).decoding != PARALLEL:  # a MaskGIT has no cached step: its decoding calls prior_logits
        functions.update({name: (function, [prior]) for name, function in step_functions(prior).items()})
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

    from vqgen.onnx_ops import CUSTOM_OP_HANDLERS

    signature = function.structured_input_signature[0]
    tf2onnx.convert.from_function(
        tf.function(function),
        input_signature=signature,
        opset=ONNX_OPSET,
        output_path=path,
        custom_op_handlers=dict(CUSTOM_OP_HANDLERS),
    )


def export_portable(path, vqvae, prior=None, format="litert", overwrite=False):
    """Writes a LiteRT or ONNX export of `vqvae` (and `prior`) into the folder `path`, atomically.

    Args:
        path: str or path-like. The folder to write.
        vqvae: a `vqgen.VQVAE`.
        prior: optional prior of `prior.registry` trained on `vqvae`'s codes.
        format: "litert" or "onnx".
        overwrite: bool. Replace a non-empty folder at `path`. Defaults to `False`.

    Returns:
        str, `path`.

    Raises:
        ValueError: an unknown format, or models as `export_saved_model` refuses them.
        FileExistsError: `path` is a file, or a non-empty folder and `overwrite` is False.
        ImportError: the converter is not installed (`pip install -e '.[export]'`).

    Example:
    >>> export_portable("exported/digits-onnx", vqvae, prior, format="onnx")  # doctest: +SKIP
    """
    if format not in PORTABLE_FORMATS:
        raise ValueError(f"format must be one of {sorted(PORTABLE_FORMATS)}. Received: format={format!r}")
    check_models(vqvae, prior)
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
        `prior_logits(codes, labels=None)` and `sample`: for a raster-order prior `sample(gumbel,
        temperature=1.0, labels=None, guidance=1.0, method="cached")` (`method="full"` samples with
        one `prior_logits` pass per position), for a MaskGIT `sample(gumbel, confidence_gumbel,
        temperature=1.0, labels=None, guidance=1.0)` (`noise_sampler.maskgit_sample_with_noise`;
        `noise_sampler.maskgit_noise` makes the two noise tensors); guidance other than 1 for a prior
        trained with label dropout.

    Raises:
        ValueError: from `sample`, a guidance other than 1 for a prior without label dropout, an
            unknown `method`, or noise as `vqgen.noise_sampler` refuses it.

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
    if not os.path.isfile(logits_file):
        return loaded
    logits = run(logits_file)

    def prior_logits_(codes, labels=None):
        inputs = {"codes": codes} if labels is None else {"codes": codes, "labels": labels}
        return logits(**inputs)["logits"]

    loaded.prior_logits = prior_logits_
    steps = {"full": noise_sampler.FullPassStep(prior_logits_, config["prior"]["grid_shape"])}
    row_file = os.path.join(path, f"prior_row.{extension}")
    step_file = os.path.join(path, f"prior_step.{extension}")
    if os.path.isfile(step_file):  # a raster-order prior
        start = run(os.path.join(path, f"prior_start.{extension}"))
        row = run(row_file) if os.path.isfile(row_file) else None
        if config["format"] == "litert":
            steps["cached"] = LiteRTCachedStep(start, step_file, row)
        else:
            steps["cached"] = noise_sampler.CachedStep(start, run(step_file), row)
    # The "no label" class of a prior trained with label dropout is its num_classes
    no_label = config["prior"]["num_classes"] if config["prior"].get("label_dropout", 0) > 0 else None

    def check_guidance(guidance):
        if guidance != 1 and no_label is None:
            raise ValueError(f"guidance={guidance!r} needs a prior trained with label dropout; use 1")

    def sample(gumbel, temperature=1.0, labels=None, guidance=1.0, method="cached"):
        check_guidance(guidance)
        if method not in steps:
            raise ValueError(f"method must be one of {sorted(steps)}. Received: method={method!r}")
        return noise_sampler.sample_raster(steps[method], gumbel, temperature, labels, guidance, no_label)

    def sample_maskgit(gumbel, confidence_gumbel, temperature=1.0, labels=None, guidance=1.0):
        check_guidance(guidance)
        return noise_sampler.maskgit_sample_with_noise(
            prior_logits_, gumbel, confidence_gumbel, temperature, labels, guidance, no_label
        )

    # exports written before the "noise" entry hold raster-order priors only
    parallel = config.get("noise", {}).get("decoding") == PARALLEL
    loaded.sample = sample_maskgit if parallel else sample
    return loaded


class _InterpreterInput:
    """A cache tensor held in an input tensor of a LiteRT interpreter, as `noise_sampler.CachedStep`
    uses a cache array for an `update_NAME` slice: its `shape` and slice assignment, written in place.

    It keeps the function `Interpreter.tensor` returns, not a view: a view held across `invoke`
    would make LiteRT refuse to run (and the interpreter may move its tensors on its first run)."""

    def __init__(self, interpreter, index, shape):
        self._view = interpreter.tensor(index)
        self.shape = shape

    def __setitem__(self, key, value):
        self._view()[key] = value


class LiteRTCachedStep(noise_sampler.CachedStep):
    """`noise_sampler.CachedStep` over a LiteRT `prior_step` that keeps the position cache inside it.

    A plain `CachedStep` passes every cache tensor in at every position, and LiteRT copies each
    into the interpreter (a signature runner sets every input): for the Transformer's key/value
    caches that is the whole cache per position (64 MiB at 32x32 for 16 grids), about a third of
    its step. Here `initial_cache(batch)` sizes the step's inputs for `batch` once and copies the
    initial caches in; each position then sets only the codes, the index and the labels, and the
    loop writes each `update_NAME` slice into the interpreter's input tensor in place (a cache a
    step replaces, `next_NAME`, is set again at the next call). The loop, `sample_raster`, is the
    same as with ONNX Runtime.

    Args:
        start: the `prior_start` model (a function of named arrays returning a dict of arrays).
        step_file: str, the `prior_step.tflite` file.
        row: the `prior_row` model, or None for a prior without once-per-row work.

    Raises:
        ValueError: from `call_with_cache`, a batch other than the last `initial_cache`'s, or a
            cache from an earlier `initial_cache`.

    Example:
    >>> step = LiteRTCachedStep(start, "export/prior_step.tflite")  # doctest: +SKIP
    >>> noise = noise_sampler.gumbel_noise(16, (32, 32), 512)  # doctest: +SKIP
    >>> codes = noise_sampler.sample_raster(step, noise)  # doctest: +SKIP
    """

    def __init__(self, start, step_file, row=None):
        self._interpreter = litert_interpreter(step_file)
        # Only the runner's tensor details: a live runner would make `invoke` refuse to run
        runner = self._interpreter.get_signature_runner()
        self._inputs = runner.get_input_details()
        self._outputs = {name: details["index"] for name, details in runner.get_output_details().items()}
        del runner
        self._batch, self._kept = None, {}
        super().__init__(start, self._run, row)

    def initial_cache(self, batch):
        """The position cache before the first position, held in the interpreter sized for `batch`."""
        cache = super().initial_cache(batch)
        if batch != self._batch:  # resized and allocated once per batch size, not per call
            for details in self._inputs.values():
                shape = [batch if size == -1 else size for size in details["shape_signature"]]
                self._interpreter.resize_tensor_input(details["index"], shape)
            self._interpreter.allocate_tensors()
            self._batch = batch
        self._kept = {}
        for name, value in cache.items():
            index = self._inputs[name]["index"]
            self._interpreter.set_tensor(index, value)
            self._kept[name] = _InterpreterInput(self._interpreter, index, value.shape)
        return dict(self._kept)

    def _run(self, **inputs):
        if len(inputs["previous_codes"]) != self._batch:
            raise ValueError(
                f"this LiteRT step holds caches for a batch of {self._batch} (its last initial_cache); "
                f"received a batch of {len(inputs['previous_codes'])}"
            )
        for name, value in inputs.items():
            if not isinstance(value, _InterpreterInput):
                self._interpreter.set_tensor(self._inputs[name]["index"], value)
            elif value is not self._kept[name]:
                raise ValueError(f"{name} is a cache of an earlier initial_cache; start from the last one")
        self._interpreter.invoke()
        return {name: self._interpreter.get_tensor(index) for name, index in self._outputs.items()}


def litert_interpreter(model_file):
    """A LiteRT interpreter of `model_file` that runs on every core this process may use.

    Left to itself, the interpreter runs XNNPACK on one thread, and the cached sampling steps are
    large enough (a 32x32 Transformer's attention over its cache) to gain from more.

    Args:
        model_file: str, a `.tflite` file.

    Returns:
        `ai_edge_litert.interpreter.Interpreter`, not yet allocated.

    Example:
    >>> runner = litert_interpreter("export/prior_step.tflite").get_signature_runner()  # doctest: +SKIP
    """
    from ai_edge_litert.interpreter import Interpreter

    usable = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else range(os.cpu_count() or 1)
    return Interpreter(model_path=model_file, num_threads=len(usable))


def _litert_function(model_file):
    runner = litert_interpreter(model_file).get_signature_runner()
    return lambda **inputs: runner(**inputs)


def _onnx_function(model_file):
    import onnxruntime

    session = onnxruntime.InferenceSession(model_file, providers=["CPUExecutionProvider"])
    outputs = [output.name for output in session.get_outputs()]

    def run(**inputs):
        return dict(zip(outputs, session.run(outputs, inputs)))

    return run
