"""Exporting a trained VQ-VAE (and optionally its prior, any of `prior.registry`) as a TensorFlow SavedModel.

The SavedModel needs neither `vqgen` nor `prior` to run: `tf.saved_model.load`, `saved_model_cli`
and TensorFlow Serving call its signatures directly.
"""

import json
import os
import tempfile
import types

import tensorflow as tf

from prior import parallel_decode
from prior.registry import PARALLEL, kind_of
from prior.sampling import sample_full_from_noise
from vqgen.models.vqvae import VQVAE
from vqgen.runs.atomic_file import atomic_path
from vqgen.settings import EXPORT_DEFAULTS
from vqgen.version import __version__

CONFIG_ASSET_NAME = "vqgen_config.json"


def export_saved_model(path, vqvae, prior=None, overwrite=False, max_samples=EXPORT_DEFAULTS.max_samples):
    """Writes `vqvae` (and `prior`) as a SavedModel with serving signatures.

    The exported graph holds the VQ-VAE's encoder, codebook and decoder (van den Oord et al. 2017,
    "Neural Discrete Representation Learning") and, when given, the prior (gated PixelCNN or
    Transformer) with its compiled autoregressive sampling loop (the faster sampler, as
    `prior.sample` picks it: the PixelCNN's cached loop or the Transformer's key/value cache).
    Its signatures are:

    - `encode`: `images` float32 `[batch, H, W, C]` in [0, 1] -> `codes` int32 `[batch, h, w]`
      (`[batch, h, w, d]` for a residual-VQ model, here and below).
    - `decode`: `codes` int32 `[batch, h, w]` in `[0, K)` -> `images` float32 `[batch, H, W, C]`.
    - `reconstruct`: `images` -> `images`, `codes`.
    - `sample` (with a prior): `num_samples` int32 scalar >= 1, `temperature` float32 scalar > 0,
      `seed` int64 scalar, and `labels` int32 `[num_samples]` for a class-conditional prior ->
      `images`, `codes`: the first release's contract, with no other input. It samples without
      guidance (a scale of 1) and, for a MaskGIT prior, in its default decoding steps (the config
      asset's `sample_steps`). A seed draws the same codes as `prior.sample(num_samples,
      temperature=..., seed=seed, labels=...)` in-process.
    - `sample_guided` (a prior trained with label dropout): the inputs of `sample` and `guidance`
      float32 scalar >= 0, the classifier-free guidance scale (`prior.guidance`; 1: none, 0: the
      "no label" class) -> `images`, `codes`, as `prior.sample(..., guidance=guidance)`.
    - `sample_with_steps` (a MaskGIT prior): the inputs of `sample` and `steps` int32 scalar in
      `[1, rows * cols]`, the decoding steps (fewer: faster, coarser), as
      `prior.sample(..., steps=steps)`.
    - `sample_guided_with_steps` (a MaskGIT prior trained with label dropout): the inputs of
      `sample`, `guidance` and `steps`.
    - `prior_logits`: `codes` int32 `[batch, rows, cols]` (the prior's grids; in `[0, K]` for a
      MaskGIT, `K` its mask token), and `labels` int32 `[batch]` for a class-conditional prior ->
      `logits` float32 `[batch, rows, cols, K]`: one full pass of the prior.
    - `sample_from_noise`: the sampler with the randomness as an input, the same draws as the LiteRT
      and ONNX exports' NumPy loop (`vqgen.noise_sampler`) for the same noise, without guidance.
      For a raster-order prior: `gumbel` float32 `[num, rows, cols, K]` standard Gumbel noise,
      `temperature` float32 scalar > 0, and `labels` for a class-conditional prior -> `images`,
      `codes` (the full-pass sampler, `prior.sampling.sample_full_from_noise`). For a MaskGIT:
      `gumbel` float32 `[num, steps, rows, cols, K]` (the draws of each step) and
      `confidence_gumbel` float32 `[num, steps, rows, cols]` (the confidences' noise), standard
      Gumbel noise for `steps` in `[1, rows * cols]` decoding steps on the cosine schedule,
      `temperature` and `labels` -> `images`, `codes` (`prior.parallel_decode.sample_from_noise`).
      The config asset's "noise" describes the layout.
    - `sample_from_noise_guided` (a prior trained with label dropout): the inputs of
      `sample_from_noise` and `guidance`.
    - `serving_default`: `sample` when a prior is exported, else `reconstruct`.

    Every input of every signature is required: no SignatureDef records a default (TensorFlow
    Serving and `saved_model_cli` do not fill them in), so a signature takes exactly the inputs
    listed here, and guidance or steps are asked for by choosing the signature that takes them.
    Bad inputs fail inside the graph (`tf.errors.InvalidArgumentError`) with a message naming the
    expected shape or range. The toolkit version, both models' `get_config()` and the signatures
    with their inputs and outputs (`signature_listing`) are stored as the JSON asset
    `assets/vqgen_config.json`, found after loading at `loaded.config_file.asset_path`. The export
    is written to a temporary sibling folder and renamed onto `path` only once complete, so a
    failure never leaves a half-written export. `path` may be any `tf.io.gfile` path (`gs://...`):
    there the files are moved into place one by one, `saved_model.pb` last (see docs/serving.md).

    Args:
        path: str or path-like. Folder to write the SavedModel to.
        vqvae: a `vqgen.VQVAE`.
        prior: optional `prior.PixelCNN`, `prior.Transformer` or `prior.MaskGIT` trained on `vqvae`'s
            codes (same `num_embeddings` and `grid_shape`). A MaskGIT also gets the `steps`
            signatures, and its noise-driven signatures take noise for each decoding step.
        overwrite: bool. Replace a non-empty folder at `path`. Defaults to `False`.
        max_samples: int >= 1. Every `sample*` signature refuses a larger `num_samples` (with a message
            naming this limit) before it allocates anything. Defaults to
            `vqgen.settings.EXPORT_DEFAULTS.max_samples` (1024).

    Returns:
        str, the path of the written SavedModel.

    Raises:
        FileExistsError: `path` is a non-empty folder and `overwrite` is False, or `path` is a file.
        ValueError: `vqvae` is not a `VQVAE`, `prior` is not a registered prior (`prior.registry`), or
            its codebook size or grid shape differs from the VQ-VAE's.

    Example:
    >>> export_saved_model("exports/digits/1", vqvae, prior)  # doctest: +SKIP
    >>> loaded = tf.saved_model.load("exports/digits/1")  # doctest: +SKIP
    >>> loaded.signatures["sample"](num_samples=tf.constant(4), temperature=tf.constant(1.0),
    ...                             seed=tf.constant(7, tf.int64))["images"].shape  # doctest: +SKIP
    TensorShape([4, 28, 28, 1])
    """
    check_models(vqvae, prior)
    if isinstance(max_samples, bool) or not isinstance(max_samples, int) or max_samples < 1:
        raise ValueError(f"max_samples must be an int >= 1. Received: max_samples={max_samples!r}")
    build_untrained(vqvae, prior)
    path = os.fspath(path)
    check_export_path(path, overwrite)
    module = _ServingModule(vqvae, prior, max_samples)
    signatures = module.trace_signatures()
    module.check_no_new_variables()
    config = {**export_config(vqvae, prior), "signatures": signature_listing(signatures)}
    with tempfile.TemporaryDirectory() as staging:
        config_path = os.path.join(staging, CONFIG_ASSET_NAME)
        with open(config_path, "w", encoding="utf-8") as stream:
            json.dump(config, stream, indent=2, sort_keys=True)
        module.config_file = tf.saved_model.Asset(config_path)
        with atomic_path(path, last_file=tf.saved_model.SAVED_MODEL_FILENAME_PB) as temporary:
            tf.saved_model.save(module, temporary, signatures=signatures)
    return path


def check_export_path(path, overwrite):
    """Refuses an export path that is a file, or a non-empty folder unless `overwrite` (any gfile path).

    Args:
        path: str. Local or a URL (`gs://...`).
        overwrite: bool.

    Raises:
        FileExistsError: one line naming the fix.

    Example:
    >>> check_export_path("exported/digits", overwrite=False)  # doctest: +SKIP
    """
    if tf.io.gfile.exists(path) and not tf.io.gfile.isdir(path):
        raise FileExistsError(f"{path} is a file; choose a folder path for the export.")
    if tf.io.gfile.isdir(path) and tf.io.gfile.listdir(path) and not overwrite:
        raise FileExistsError(
            f"{path} already exists and is not empty; choose another path or pass overwrite=True."
        )


def build_untrained(vqvae, prior=None):
    """Creates the weights of a model that was never called or trained, before anything is traced.

    An export's functions read the models' variables as captured tensors; a variable first created
    while a function is being traced cannot be lifted out of that trace (`UnliftableError`), so
    every variable must exist before the export collects them.

    Args:
        vqvae: a `vqgen.VQVAE`.
        prior: None or a prior.

    Example:
    >>> build_untrained(vqvae, prior)  # doctest: +SKIP
    """
    if not vqvae.built:
        vqvae.build((None, *vqvae.image_shape))
    if prior is not None and not prior.built:
        prior.build()


def check_models(vqvae, prior):
    """Checks that `vqvae` and `prior` can be exported together (by any export format).

    Args:
        vqvae: should be a `vqgen.VQVAE`.
        prior: None, or should be a registered prior (`prior.registry`) trained on `vqvae`'s codes.

    Raises:
        ValueError: `vqvae` is not a `VQVAE`, `prior` is not a registered prior, or the prior's
            codebook size or grid shape differs from the VQ-VAE's.

    Example:
    >>> check_models(vqvae, prior)  # doctest: +SKIP
    """
    if not isinstance(vqvae, VQVAE):
        raise ValueError(f"vqvae must be a vqgen.VQVAE. Received: vqvae={type(vqvae).__name__}")
    if prior is None:
        return
    kind_of(prior)  # ValueError naming the registered priors
    # A residual-VQ model's prior sees (h, w * d) grids: VQVAE.to_token_grid.
    if prior.num_embeddings != vqvae.num_embeddings or prior.grid_shape != vqvae.token_grid_shape:
        raise ValueError(
            f"The prior models {prior.num_embeddings} codes on {prior.grid_shape} grids but "
            f"the VQ-VAE makes {vqvae.num_embeddings} codes on {vqvae.token_grid_shape} grids; export the "
            "prior trained on this VQ-VAE's codes."
        )


def export_config(vqvae, prior):
    """The JSON-serialisable description an export stores beside its models (`vqgen_config.json`).

    Args:
        vqvae: a `vqgen.VQVAE`.
        prior: None or a registered prior.

    Returns:
        dict with the toolkit version, both models' `get_config()`, the prior's class name, how
        the exported `sample` draws, a parallel-decoding prior's default `steps`, and the layout of
        the noise-driven samplers' noise (`noise_layout`).

    Example:
    >>> export_config(vqvae, None)["prior"] is None  # doctest: +SKIP
    True
    """
    parallel = prior is not None and kind_of(prior).decoding == PARALLEL
    return {
        "vqgen_version": __version__,
        "vqvae": vqvae.get_config(),
        "prior": None if prior is None else prior.get_config(),
        "prior_class": None if prior is None else type(prior).__name__,
        "sampling_method": _sampling_method(prior),
        # A MaskGIT's default decoding steps: those of its `sample` and `sample_guided` signatures
        "sample_steps": prior.check_steps(None, "cosine") if parallel else None,
        "noise": noise_layout(prior),
    }


def noise_layout(prior):
    """What the noise inputs of `prior`'s noise-driven samplers hold: an export config's "noise".

    Args:
        prior: None or a registered prior.

    Returns:
        None without a prior, else a dict: "decoding" (`prior.registry.RASTER` or `PARALLEL`),
        "inputs" (each noise input's shape, its symbolic sizes as names), "rule" (how the noise is
        used, in words) and, for a MaskGIT, "schedule" and "confidence_noise" (the scale of the
        confidences' noise at the first step).

    Example:
    >>> noise_layout(prior)["inputs"]  # doctest: +SKIP
    {'gumbel': ['num', 7, 7, 256]}
    """
    if prior is None:
        return None
    rows, cols = prior.grid_shape
    K = prior.num_embeddings
    if kind_of(prior).decoding != PARALLEL:
        return {
            "decoding": kind_of(prior).decoding,
            "inputs": {"gumbel": ["num", rows, cols, K]},
            "rule": "in raster order, position (r, c) of grid n is drawn as "
            "argmax(logits[n, r, c] + temperature * gumbel[n, r, c])",
        }
    return {
        "decoding": PARALLEL,
        "inputs": {
            "gumbel": ["num", "steps", rows, cols, K],
            "confidence_gumbel": ["num", "steps", rows, cols],
        },
        "schedule": "cosine",
        "confidence_noise": parallel_decode.CONFIDENCE_NOISE,
        "rule": "from grids of the mask token K, step t of steps draws every masked position (r, c) of "
        "grid n as argmax(logits[n, r, c] + temperature * gumbel[n, t, r, c]), scores it by "
        "log_softmax(logits[n, r, c])[drawn] + confidence_noise * (1 - (t + 1) / steps) * "
        "confidence_gumbel[n, t, r, c] (earlier positions: +inf) and masks again the lowest scores "
        "(ties: lower raster position), as many as the cosine schedule leaves masked after step t",
    }


def _sampling_method(prior):
    """How the exported `sample` signature draws: the raster loop, or the parallel decoding steps."""
    if prior is None:
        return None
    kind = kind_of(prior)
    if kind.decoding == PARALLEL:  # `sample` decodes in the default steps, `sample_with_steps` in any
        return f"{kind.name}, cosine schedule, {prior.check_steps(None, 'cosine')} steps unless asked for"
    return prior.resolve_sampling_method("auto")


def signature_listing(functions):
    """The inputs and outputs of traced functions, as an export's config lists its signatures.

    Args:
        functions: dict `name -> concrete function` returning a dict of named tensors (what
            `trace_once` makes).

    Returns:
        dict `name -> {"inputs": {input: {"dtype": str, "shape": list}}, "outputs": {...}}`, with
        dtypes as NumPy names ("int32") and shapes as lists whose unknown sizes are None; an input's
        name is the one a client sends.

    Example:
    >>> signature_listing({"decode": decode})["decode"]["inputs"]  # doctest: +SKIP
    {'codes': {'dtype': 'int32', 'shape': [None, 7, 7]}}
    """

    def describe(tensor):
        return {"dtype": tensor.dtype.name, "shape": tensor.shape.as_list()}

    listing = {}
    for name, function in functions.items():
        args, kwargs = function.structured_input_signature
        specs = [spec for spec in [*args, *kwargs.values()] if isinstance(spec, tf.TensorSpec)]
        listing[name] = {
            "inputs": {spec.name: describe(spec) for spec in specs},
            "outputs": {output: describe(tensor) for output, tensor in function.structured_outputs.items()},
        }
    return listing


def trace_once(function, *specs, **named_specs):
    """`function` traced once, without AutoGraph, for the input `specs`: the graph an export saves.

    Args:
        function: a Python function of tensors returning a dict of named output tensors.
        *specs: one `tf.TensorSpec` per leading positional argument.
        **named_specs: `tf.TensorSpec`s of arguments given by name; the arguments given no spec
            keep their Python defaults and are no inputs of the traced function.

    Returns:
        The concrete function.

    Example:
    >>> encode = trace_once(lambda images: {"codes": vqvae.encode_tensor(images)}, spec)  # doctest: +SKIP
    """
    return tf.function(function, autograph=False).get_concrete_function(*specs, **named_specs)


def prior_logits(prior, codes, labels=None):
    """One full pass of `prior`: float32 logits `[N, rows, cols, K]` of code grids (and labels).

    The `prior_logits` signature of the SavedModel and model of the portable exports.

    Args:
        prior: a prior (`prior.registry`).
        codes: int32 tensor `[N, rows, cols]`.
        labels: int32 tensor `[N]` for a class-conditional prior, else None.

    Returns:
        float32 tensor `[N, rows, cols, K]`.

    Example:
    >>> logits = prior_logits(prior, tf.zeros([2, 7, 7], tf.int32))  # doctest: +SKIP
    """
    inputs = codes if labels is None else {"codes": codes, "labels": labels}
    return tf.cast(prior(inputs), tf.float32)


def underlying_variables(models):
    """The `tf.Variable`s beneath the Keras variables of `models`, as an export must track them.

    With Keras 3 variables in a saved object graph, the SavedModel restores into copies that the
    traced functions do not read, and the TF1 loader of `saved_model_cli run` and TensorFlow
    Serving fails ("Could not find variable"); the underlying variables avoid both.

    Args:
        models: list of Keras models.

    Returns:
        list of `tf.Variable`.

    Example:
    >>> holder = tf.Module(); holder.model_variables = underlying_variables([vqvae])  # doctest: +SKIP
    """
    return [variable.value for model in models for variable in exported_variables(model)]


def exported_variables(model):
    """The Keras variables an export of `model` holds: a VQ-VAE's `codec_variables` (no loss term's,
    such as a discriminator's), a prior's `variables`."""
    return model.codec_variables if isinstance(model, VQVAE) else model.variables


def _shape_check(tensor, expected, message):
    """A graph assertion that `tensor` has shape `expected` (None: any size), for any input rank.

    `tf.shape` and `tf.size` would fold the traced static shape into a constant (the loaded
    signatures do not check the shapes they are fed), so a `Shape` op reads the shape at run
    time. This holds for inputs with an unknown batch size; fully static shapes (the scalars of
    `sample`) are folded when the graph is optimised, so they are not checked here.
    The shape is padded with -1 before the comparison, so an input of another rank fails this
    assertion (with `message` and the received shape) instead of a shape error of its own.
    """
    shape = tf.raw_ops.Shape(input=tensor, out_type=tf.int32)
    rank = len(expected)
    padded = tf.concat([shape, tf.fill([rank + 1], -1)], axis=0)[: rank + 1]
    matches = tf.equal(padded[rank], -1)  # no axis beyond the expected ones
    for axis, size in enumerate(expected):
        matches = tf.logical_and(
            matches, tf.not_equal(padded[axis], -1) if size is None else tf.equal(padded[axis], size)
        )
    return tf.debugging.Assert(matches, [f"{message}; received shape", shape], summarize=rank + 8)


def _guidance_checks(guidance):
    """Graph assertions on a `guidance` input (none without one): a finite float >= 0."""
    if guidance is None:
        return []
    message = "guidance must be a finite number >= 0 (1: none)"
    return [
        tf.debugging.assert_greater_equal(guidance, 0.0, message=message),
        tf.debugging.assert_less(guidance, float("inf"), message=message),
    ]


def _plain_at_scale_1(guided, plain):
    """A guided signature's function: `plain` (the traced signature without `guidance`) when the scale
    is 1 at run time, else `guided(guidance=..., ...)`.

    A scale of 1 runs the plain loop, as in-process `sample(guidance=1)` does, so it gives exactly
    the plain grids and costs no "no label" pass. The plain signature's graph is called, not traced
    a second time (an export traces each sampling loop once).

    Args:
        guided: function of the signature's inputs, `guidance` included, returning a dict of tensors.
        plain: the concrete function of the same signature without `guidance`.

    Returns:
        A function of the guided signature's inputs, given by name.
    """

    def guided_or_plain(**inputs):
        guidance = inputs["guidance"]
        plain_inputs = {name: value for name, value in inputs.items() if name != "guidance"}
        return tf.cond(tf.equal(guidance, 1.0), lambda: plain(**plain_inputs), lambda: guided(**inputs))

    return guided_or_plain


def _parallel_noise_checks(gumbel, confidence_gumbel, prior):
    """Graph assertions on a MaskGIT's noise: its shapes, steps in `[1, rows * cols]`, one confidence
    noise per draw."""
    rows, cols = prior.grid_shape
    positions = rows * cols
    layout = f"[num, steps, {rows}, {cols}"
    shapes = [
        _shape_check(
            gumbel, [None, None, rows, cols, prior.num_embeddings], f"gumbel must have shape {layout}, K]"
        ),
        _shape_check(
            confidence_gumbel, [None, None, rows, cols], f"confidence_gumbel must have shape {layout}]"
        ),
    ]
    gumbel_shape = tf.raw_ops.Shape(input=gumbel, out_type=tf.int32)  # at run time, see `_shape_check`
    confidence_shape = tf.raw_ops.Shape(input=confidence_gumbel, out_type=tf.int32)
    steps = f"gumbel's steps (axis 1) must be in [1, {positions}] (rows * cols)"
    return shapes + [
        tf.debugging.assert_greater_equal(gumbel_shape[1], 1, message=steps),
        tf.debugging.assert_less_equal(gumbel_shape[1], positions, message=steps),
        tf.debugging.assert_equal(
            confidence_shape[:2],
            gumbel_shape[:2],
            message="confidence_gumbel must have shape [num, steps, rows, cols], as gumbel [num, steps, ...]",
        ),
    ]


def _prior_signatures(prior):
    """The signatures an export adds for `prior`: `{name: (function, input names)}`.

    `function` is what the signature runs ("sample", "prior_logits" or "sample_from_noise"). The
    suffix `_guided` adds the `guidance` input (a prior trained with label dropout), `_with_steps`
    the `steps` input (a parallel-decoding prior); the signatures without them sample with
    guidance 1 and the default steps. A parallel-decoding prior's noise has one more input,
    `confidence_gumbel`, and its steps are those of the noise.
    """
    labels = ("labels",) if prior.conditional else ()
    sample = ("num_samples", "temperature", "seed", *labels)
    guided = prior.supports_guidance
    signatures = {"sample": ("sample", sample)}
    if guided:
        signatures["sample_guided"] = ("sample", (*sample, "guidance"))
    noise = ("gumbel", "temperature", *labels)
    if kind_of(prior).decoding == PARALLEL:
        signatures["sample_with_steps"] = ("sample", (*sample, "steps"))
        if guided:
            signatures["sample_guided_with_steps"] = ("sample", (*sample, "guidance", "steps"))
        noise = ("gumbel", "confidence_gumbel", "temperature", *labels)
    signatures["prior_logits"] = ("prior_logits", ("codes", *labels))
    signatures["sample_from_noise"] = ("sample_from_noise", noise)
    if guided:
        signatures["sample_from_noise_guided"] = ("sample_from_noise", (*noise, "guidance"))
    return signatures


def _prior_input_specs(prior):
    """`{input name: tf.TensorSpec}` of every input a signature of `prior` may take."""
    grid = list(prior.grid_shape)
    parallel = kind_of(prior).decoding == PARALLEL
    steps = [None] if parallel else []  # a parallel-decoding prior's noise has a steps axis
    specs = [
        tf.TensorSpec([], tf.int32, name="num_samples"),
        tf.TensorSpec([], tf.float32, name="temperature"),
        tf.TensorSpec([], tf.int64, name="seed"),
        tf.TensorSpec([None], tf.int32, name="labels"),
        tf.TensorSpec([], tf.float32, name="guidance"),
        tf.TensorSpec([], tf.int32, name="steps"),
        tf.TensorSpec([None, *grid], tf.int32, name="codes"),  # the prior's grids
        tf.TensorSpec([None, *steps, *grid, prior.num_embeddings], tf.float32, name="gumbel"),
        tf.TensorSpec([None, None, *grid], tf.float32, name="confidence_gumbel"),
    ]
    return {spec.name: spec for spec in specs}


class _ServingModule(tf.Module):
    """What is saved: the models' variables, the config asset and the signature functions.

    The Keras models are kept out of the object graph (in a plain namespace) and their variables
    are tracked as the underlying `tf.Variable`s: with Keras 3 variables in the object graph the
    SavedModel restores into copies that the signatures do not read, and it fails under the TF1
    loader used by `saved_model_cli run` and TensorFlow Serving ("Could not find variable").
    """

    def __init__(self, vqvae, prior, max_samples):
        super().__init__(name="vqgen_export")
        self.models = types.SimpleNamespace(vqvae=vqvae, prior=prior)
        models = [vqvae] if prior is None else [vqvae, prior]
        self.model_variables = underlying_variables(models)
        self.max_samples = max_samples

    def check_no_new_variables(self):
        """Raises ValueError if tracing created variables that the export would not hold."""
        models = [model for model in vars(self.models).values() if model is not None]
        created = sum(len(exported_variables(model)) for model in models) - len(self.model_variables)
        if created:
            raise ValueError(
                f"Tracing the signatures created {created} new variables; build the models "
                "(call them once) before exporting."
            )

    def trace_signatures(self):
        """Traces every signature once (without AutoGraph); returns `{name: concrete function}`.

        Each signature is traced for the inputs it takes, given by name (`trace_once`), so that no
        signature has an input beyond its contract and none has a default.
        """
        vqvae, prior = self.models.vqvae, self.models.prior
        images = tf.TensorSpec([None, *vqvae.image_shape], tf.float32, name="images")
        codes = tf.TensorSpec([None, *vqvae.code_shape], tf.int32, name="codes")
        signatures = {
            "encode": trace_once(self._encode, images),
            "decode": trace_once(self._decode, codes),
            "reconstruct": trace_once(self._reconstruct, images),
        }
        if prior is None:
            signatures["serving_default"] = signatures["reconstruct"]
            return signatures
        functions = {
            "sample": self._sample,
            "prior_logits": self._prior_logits,
            "sample_from_noise": self._sample_from_noise,
        }
        specs = _prior_input_specs(prior)
        for name, (function, inputs) in _prior_signatures(prior).items():
            traced = functions[function]
            if "guidance" in inputs:  # its plain signature (the name without "_guided") comes first
                traced = _plain_at_scale_1(traced, signatures[name.replace("_guided", "")])
            signatures[name] = trace_once(traced, **{input: specs[input] for input in inputs})
        signatures["serving_default"] = signatures["sample"]
        return signatures

    def _encode(self, images):
        return {"codes": self.models.vqvae.encode_tensor(self._checked_images(images))}

    def _decode(self, codes):
        return {"images": self.models.vqvae.decode_tensor(self._checked_codes(codes))}

    def _reconstruct(self, images):
        codes = self.models.vqvae.encode_tensor(self._checked_images(images))
        return {"images": self.models.vqvae.decode_tensor(codes), "codes": codes}

    def _prior_logits(self, codes, labels=None):
        return {"logits": prior_logits(self.models.prior, codes, labels)}

    def _sample_from_noise(self, gumbel, temperature, labels=None, guidance=None, confidence_gumbel=None):
        prior = self.models.prior
        checks = [tf.debugging.assert_greater(temperature, 0.0, message="temperature must be > 0")]
        if labels is not None:
            checks.append(
                tf.debugging.assert_equal(
                    tf.size(labels), tf.shape(gumbel)[0], message="labels must hold one label per noise grid"
                )
            )
        if confidence_gumbel is not None:
            checks += _parallel_noise_checks(gumbel, confidence_gumbel, prior)
        with tf.control_dependencies(checks + _guidance_checks(guidance)):
            temperature = tf.identity(temperature)
            if confidence_gumbel is None:
                tokens = sample_full_from_noise(prior, gumbel, temperature, labels, guidance)
            else:
                tokens = parallel_decode.sample_from_noise(
                    prior, gumbel, confidence_gumbel, temperature, labels, guidance
                )
        codes = self.models.vqvae.from_token_grid(tokens)  # residual VQ: (n, h, w * d) -> (n, h, w, d)
        return {"images": self.models.vqvae.decode_tensor(codes), "codes": codes}

    def _sample(self, num_samples, temperature, seed, labels=None, guidance=None, steps=None):
        prior = self.models.prior
        steps = {} if steps is None else {"steps": steps}  # MaskGIT's decoding steps
        checks = [
            tf.debugging.assert_less(
                temperature, float("inf"), message="temperature must be a finite number > 0"
            ),
        ]
        if labels is not None:
            checks.append(_shape_check(labels, [None], "labels must have shape [num_samples]"))
        # The serving limit, checked before the sampler allocates anything for num_samples.
        checks.append(
            tf.debugging.assert_less_equal(
                num_samples,
                self.max_samples,
                message=f"num_samples must be <= {self.max_samples}, the limit this model was exported "
                "with (export_saved_model max_samples, vqgen export --max-samples)",
            )
        )
        # sample_codes asserts num_samples >= 1, temperature > 0 and labels in [0, num_classes).
        with tf.control_dependencies(checks + _guidance_checks(guidance)):
            num_samples = tf.identity(num_samples)  # everything sized by it waits for the checks
            codes = prior.sample_codes(
                num_samples,
                temperature,
                seed,
                labels=labels,
                guidance=guidance,  # None: the faster plain loop of an autoregressive prior ("auto")
                **steps,
            )
        codes = self.models.vqvae.from_token_grid(codes)  # residual VQ: (n, h, w * d) -> (n, h, w, d)
        return {"images": self.models.vqvae.decode_tensor(codes), "codes": codes}

    def _checked_images(self, images):
        height, width, channels = self.models.vqvae.image_shape
        shape = _shape_check(
            images,
            [None, height, width, channels],
            f"images must have shape [batch, {height}, {width}, {channels}]",
        )
        # Flattened, so that the range checks hold for an input of any rank.
        pixels = tf.reshape(images, [-1])
        message = "images must be float32 pixels in [0, 1] (divide 8-bit images by 255)"
        checks = [
            shape,
            tf.debugging.assert_greater_equal(pixels, 0.0, message=message),
            tf.debugging.assert_less_equal(pixels, 1.0, message=message),
        ]
        with tf.control_dependencies(checks):
            return tf.identity(images)

    def _checked_codes(self, codes):
        # The range [0, K) is asserted by the quantizer's lookup.
        shape = self.models.vqvae.code_shape  # (h, w), or (h, w, d) for residual VQ
        check = _shape_check(
            codes, [None, *shape], f"codes must have shape [batch, {', '.join(map(str, shape))}]"
        )
        with tf.control_dependencies([check]):
            return tf.identity(codes)
