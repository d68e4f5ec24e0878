"""ONNX forms of the TensorFlow ops a prior's graph holds that tf2onnx (1.17) does not convert.

The Transformer's exact GELU (Keras' `gelu(approximate=False)`) traces to `Erfc`, and its key/value
cache update (`keras.ops.slice_update`) to `XlaDynamicUpdateSlice`; tf2onnx refuses both. The
handlers here rewrite each node in ONNX ops of opset 13 and later, for `tf2onnx.convert`'s
`custom_op_handlers`:

- `Erfc(x)` -> `1 - Erf(x)`;
- `XlaDynamicUpdateSlice(operand, update, starts)` -> `ScatterND(operand, indices, update)`, the
  indices of every element of `update` offset by `starts` (clamped, as XLA does, so that the update
  fits inside `operand`).
"""

import numpy as np
from onnx import TensorProto
from tf2onnx import utils
from tf2onnx.graph_builder import GraphBuilder


def _erfc(ctx, node, name, args):
    """Rewrites `node` (`Erfc`) as `Erf` followed by `1 - ...`."""
    node.type = "Erf"
    node.domain = ""
    dtype = ctx.get_dtype(node.output[0])
    one = ctx.make_const(utils.make_name(f"{name}_one"), np.array(1, utils.map_onnx_to_numpy_type(dtype)))
    erfc = ctx.insert_new_node_on_output(
        "Sub", node.output[0], name=utils.make_name(f"{name}_erfc"), inputs=[one.output[0], node.output[0]]
    )
    ctx.set_dtype(erfc.output[0], dtype)
    ctx.copy_shape(node.output[0], erfc.output[0])


def _dynamic_update_slice(ctx, node, name, args):
    """Rewrites `node` (`XlaDynamicUpdateSlice`) as a `ScatterND` of the update's elements."""
    operand, update, starts = node.input
    rank = ctx.get_rank(update)
    builder = GraphBuilder(ctx)
    update_shape = ctx.make_node("Shape", [update]).output[0]
    # XLA clamps each start into [0, operand size - update size]
    room = ctx.make_node("Sub", [ctx.make_node("Shape", [operand]).output[0], update_shape]).output[0]
    starts = ctx.make_node("Cast", [starts], attr={"to": TensorProto.INT64}).output[0]
    zero = ctx.make_const(utils.make_name(f"{name}_zero"), np.zeros([rank], np.int64)).output[0]
    starts = ctx.make_node("Min", [ctx.make_node("Max", [starts, zero]).output[0], room]).output[0]
    one = ctx.make_const(utils.make_name(f"{name}_one"), np.array(1, np.int64)).output[0]
    axis_indices = []
    for axis in range(rank):
        position = ctx.make_const(utils.make_name(f"{name}_axis"), np.array([axis], np.int64)).output[0]
        start = builder.make_squeeze(
            {"data": ctx.make_node("Gather", [starts, position]).output[0], "axes": [0]}
        )
        size = builder.make_squeeze(
            {"data": ctx.make_node("Gather", [update_shape, position]).output[0], "axes": [0]}
        )
        stop = ctx.make_node("Add", [start, size]).output[0]
        along = ctx.make_node("Range", [start, stop, one]).output[0]
        broadcast_shape = np.ones([rank], np.int64)
        broadcast_shape[axis] = -1
        shape = ctx.make_const(utils.make_name(f"{name}_shape"), broadcast_shape).output[0]
        along = ctx.make_node("Reshape", [along, shape]).output[0]
        along = ctx.make_node("Expand", [along, update_shape]).output[0]
        axis_indices.append(builder.make_unsqueeze({"data": along, "axes": [-1]}))
    indices = ctx.make_node("Concat", axis_indices, attr={"axis": -1}).output[0]
    node.type = "ScatterND"
    node.domain = ""
    ctx.replace_inputs(node, [operand, indices, update])
    for attribute in list(node.attr):
        del node.attr[attribute]


CUSTOM_OP_HANDLERS = {"Erfc": (_erfc, []), "XlaDynamicUpdateSlice": (_dynamic_update_slice, [])}
