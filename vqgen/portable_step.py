"""A raster-order prior's cached step as functions with its cache as named tensors in and out.

The SavedModel samples with the prior's own cached step (`initial_cache`, `call_with_cache` and,
for the PixelCNN, `initial_row_cache` and `complete_row`) inside a `tf.while_loop`; LiteRT and ONNX
run neither the loop nor a nested cache. This module traces those same methods (no second
implementation of the network) as loop-free functions whose cache is a flat list of named tensors,
each with a dynamic batch size, for `vqgen.portable_export` to convert:

    prior_start          batch int32 [] -> the caches before the first position (and row)
    prior_step           previous_codes int32 [N], index int32 [] (+ labels int32 [N]) and the
                         position cache -> logits float32 [N, K] and the next position cache
    prior_row            (a prior with once-per-row work) row_codes int32 [N, cols] (+ labels) and
                         the row cache -> the next row cache and the position cache of the next row

A cache tensor is named after its place in the prior's cache (`cache_contribution_0`, `row_cache_0`,
`cache_0`, ...). A step returns only what it changes: for a tensor it replaces, the next value
under the name prefixed `next_` (ONNX forbids an output named like an input); for one it changes by
a slice update (the Transformer's key/value caches gain one position per step), the slice
`update_NAME` and its start `start_NAME` (one int32 per axis), which the loop writes in place;
nothing for one it leaves as it was (the PixelCNN's vertical contributions within a row).
`vqgen.noise_sampler.sample_raster` runs these in the loop of
`prior.sampling.sample_raster`.
"""

import inspect

import keras
import tensorflow as tf

from vqgen.export import trace_once
from vqgen.noise_sampler import NEXT, START, UPDATE


def _flat_names(prefix, structure):
    """`prefix` joined to each leaf's path in the nested `structure` (`cache_contribution_0`)."""
    paths = [path for path, _ in keras.tree.flatten_with_path(structure)]
    return ["_".join([prefix, *map(str, path)]) for path in paths]


def _batch_free_spec(tensor, name):
    """A `tf.TensorSpec` of `tensor` with a dynamic batch size (axis 0)."""
    return tf.TensorSpec([None, *tensor.shape[1:]], tensor.dtype, name=name)


def _named(function, names):
    """`function(*args)` with the parameter names `names`: the input names a traced function gets."""
    parameters = [inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD) for name in names]
    function.__signature__ = inspect.Signature(parameters)
    return function


def _cache_changes(names, before, after):
    """A step's outputs for the cache tensors `names` it was given (`before`) and returns (`after`).

    A tensor returned unchanged gives no output; one changed by a slice update of itself (the
    Transformer's key/value caches: `XlaDynamicUpdateSlice`) gives the slice and where it goes,
    `update_NAME` and `start_NAME` (int32, one start per axis), so that no runtime copies the whole
    cache out at every position; any other gives its next value, `next_NAME`.
    """
    outputs = {}
    for name, old, new in zip(names, before, after):
        if new is old:
            continue
        if new.op.type == "XlaDynamicUpdateSlice" and new.op.inputs[0].name == old.name:
            outputs[UPDATE + name] = new.op.inputs[1]
            outputs[START + name] = tf.cast(new.op.inputs[2], tf.int32)
        else:
            outputs[NEXT + name] = new
    return outputs


def cache_layout(prior):
    """The names of a prior's flattened caches and the structures to rebuild them from flat lists.

    Args:
        prior: a raster-order prior with `initial_cache` and `call_with_cache` (and optionally
            `initial_row_cache` and `complete_row`).

    Returns:
        dict with "cache" and "row_cache" (None without `complete_row`): each `(names, example)`,
        the flat tensor names and the prior's cache for a batch of 1.

    Example:
    >>> cache_layout(prior.Transformer(16, (4, 4), num_layers=2))["cache"][0]  # doctest: +SKIP
    ['cache_0', 'cache_1']
    """
    cache = prior.initial_cache(1)
    layout = {"cache": (_flat_names("cache", cache), cache), "row_cache": None}
    if hasattr(prior, "complete_row"):
        row_cache = prior.initial_row_cache(1)
        layout["row_cache"] = (_flat_names("row_cache", row_cache), row_cache)
    return layout


def step_functions(prior):
    """The prior's cached step traced once as `prior_start`, `prior_step` (and `prior_row`).

    Args:
        prior: a built raster-order prior (`prior.PixelCNN`, `prior.Transformer`).

    Returns:
        dict `name -> concrete function` returning a dict of named outputs (see the module
        docstring for the names).

    Example:
    >>> sorted(step_functions(prior.PixelCNN(16, (4, 4))))  # doctest: +SKIP
    ['prior_row', 'prior_start', 'prior_step']
    """
    layout = cache_layout(prior)
    cache_names, cache_example = layout["cache"]
    labels = [tf.TensorSpec([None], tf.int32, name="labels")] if prior.conditional else []

    def flat(prefix, names, structure):
        return dict(zip((prefix + name for name in names), keras.tree.flatten(structure)))

    def start(batch):
        caches = flat("", cache_names, prior.initial_cache(batch))
        if layout["row_cache"] is not None:
            caches.update(flat("", layout["row_cache"][0], prior.initial_row_cache(batch)))
        return caches

    def position_step(previous_codes, index, *rest):
        label = rest[0] if prior.conditional else None
        before = list(rest[len(labels) :])
        logits, cache = prior.call_with_cache(
            previous_codes, keras.tree.pack_sequence_as(cache_example, before), index, label
        )
        logits = tf.reshape(tf.cast(logits, tf.float32), [-1, prior.num_embeddings])  # (N, K), K static
        return {"logits": logits, **_cache_changes(cache_names, before, keras.tree.flatten(cache))}

    cache_specs = [_batch_free_spec(t, n) for n, t in zip(cache_names, keras.tree.flatten(cache_example))]
    step_inputs = [
        tf.TensorSpec([None], tf.int32, name="previous_codes"),
        tf.TensorSpec([], tf.int32, name="index"),
        *labels,
        *cache_specs,
    ]
    functions = {
        "prior_start": trace_once(start, tf.TensorSpec([], tf.int32, name="batch")),
        "prior_step": trace_once(_named(position_step, [spec.name for spec in step_inputs]), *step_inputs),
    }
    if layout["row_cache"] is None:
        return functions
    row_names, row_example = layout["row_cache"]

    def row_step(row_codes, *rest):
        label = rest[0] if prior.conditional else None
        before = list(rest[len(labels) :])
        row_cache, cache = prior.complete_row(
            row_codes, keras.tree.pack_sequence_as(row_example, before), label
        )
        return {
            **_cache_changes(row_names, before, keras.tree.flatten(row_cache)),
            **flat(NEXT, cache_names, cache),
        }

    row_inputs = [
        tf.TensorSpec([None, prior.grid_shape[1]], tf.int32, name="row_codes"),
        *labels,
        *[_batch_free_spec(t, n) for n, t in zip(row_names, keras.tree.flatten(row_example))],
    ]
    functions["prior_row"] = trace_once(_named(row_step, [spec.name for spec in row_inputs]), *row_inputs)
    return functions
