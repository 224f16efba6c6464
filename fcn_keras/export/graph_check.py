"""SavedModels are programs: the ops a SavedModel may hold before fcn_keras loads it.

A SavedModel's functions can hold any TensorFlow op, file I/O included (`ReadFile`,
`WriteFile`, `MatchingFiles`, `PrintV2` to a file, ...), and they run when the model is called.
So before `tf.saved_model.load`, `check_saved_model(folder)` reads `saved_model.pb` (a protocol
buffer, parsed without running anything) and refuses, with `UntrustedModelError`, any op
outside what this project's exporter emits:

    PURE_OPS         every op of the serving function of any fcn_keras export (all backbones
                     and heads, float32 and bfloat16, fixed or any input size, uint8 or float32
                     input, channel-wise or dense upsampling), frozen from fresh exports;
                     tests/export/test_graph_check.py re-derives the set and checks it is covered
    IMAGE_OPS        image decoding / encoding and resizing (a signature taking encoded image
                     bytes): pure computations on tensors, no file access
    CHECKPOINT_OPS   SaveV2 / RestoreV2 and the filename ops around them: allowed only in the
                     functions the SavedModel's saver (`saver_def`) names and nothing else calls,
                     where TensorFlow writes and reads the model's own variables/ folder

Every node of the top-level graph and of every function in its library is checked, whether or
not a signature reaches it. `trust=True` (`--trust-model`, `Predictor(..., trust=True)`) skips
the check for a SavedModel from a source one trusts as one trusts a program.
"""

import os

from fcn_keras import _io

#: Ops of the serving functions this project's exporter writes (see the module docstring).
PURE_OPS = frozenset({
    "AddV2", "ArgMax", "AssignVariableOp", "BiasAdd", "Cast", "ConcatV2", "Const", "Conv2D",
    "Conv2DBackpropInput",
    "DepthwiseConv2dNative", "Exp", "GatherV2", "Identity", "Less", "Log", "MatrixDiagV3", "MaxPool",
    "Mul", "NoOp", "Pack", "Pad", "Placeholder", "ReadVariableOp", "Relu", "Reshape", "Select",
    "SelectV2", "Shape", "Squeeze", "StatefulPartitionedCall", "StridedSlice", "Sub", "Sum",
    "Transpose", "VarHandleOp", "VarIsInitializedOp",
})

#: Image decoding, encoding and resizing (what `tf.image.decode_image`, `tf.io.decode_png`,
#: `tf.io.encode_png` and `tf.image.resize` build): tensors in, tensors out, no file access.
IMAGE_OPS = frozenset({
    "DecodeImage", "DecodeJpeg", "DecodePng", "DecodeBmp", "DecodeGif", "DecodeWebP", "EncodePng",
    "EncodeJpeg", "ExtractJpegShape", "ResizeBilinear", "ResizeNearestNeighbor", "ResizeArea",
    "ScaleAndTranslate", "Substr", "Equal", "NotEqual", "LogicalAnd", "LogicalOr", "LogicalNot",
    "Greater", "GreaterEqual", "LessEqual", "Assert", "If", "StatelessIf", "PartitionedCall",
    "Minimum", "Maximum", "Floor", "RealDiv", "FloorDiv", "Round", "ClipByValue", "ExpandDims",
    "Slice", "Size", "Rank", "Range", "Fill", "ZerosLike", "OnesLike", "Unpack", "Tile", "Max",
    "Min", "Prod", "Mean", "Neg", "Square", "Sqrt", "Softmax", "StopGradient", "ReverseV2",
    "Squeeze", "EnsureShape", "StringLength",
    # the segment_bytes signature: a map over the batch (its body is a function of the library,
    # checked like every other), and the palette PNG's chunk surgery on strings
    "While", "StatelessWhile", "TensorListFromTensor", "TensorListGetItem", "TensorListReserve",
    "TensorListSetItem", "TensorListStack", "TensorListLength", "TensorListElementShape",
    "DecodeRaw", "BitwiseXor", "ReduceJoin", "StringJoin",
})

#: Checkpoint writing and reading: only in the saver's own functions (see the module docstring).
CHECKPOINT_OPS = frozenset({
    "SaveV2", "RestoreV2", "MergeV2Checkpoints", "ShardedFilename", "StringJoin",
    "StaticRegexFullMatch", "DisableCopyOnRead",
})

ALLOWED_OPS = PURE_OPS | IMAGE_OPS
MAX_GRAPH_BYTES = 256 * 2**20  # saved_model.pb holds graphs; the weights live in variables/


class UntrustedModelError(ValueError):
    """A SavedModel holding an op outside the allowlist; nothing of it was loaded or run."""


def _read(folder):
    """The parsed `SavedModel` protocol buffer of `folder`/saved_model.pb (nothing run)."""
    from google.protobuf.message import DecodeError
    from tensorflow.core.protobuf import saved_model_pb2

    pb = os.path.join(folder, "saved_model.pb")
    if not os.path.isfile(pb):
        raise UntrustedModelError(f"{pb}: no saved_model.pb in the folder (a SavedModel holds one)")
    size = os.path.getsize(pb)
    if size > MAX_GRAPH_BYTES:
        raise UntrustedModelError(f"{pb}: {size:,} bytes of graph, more than the {MAX_GRAPH_BYTES:,} "
                                  "an fcn_keras export needs (its weights live in variables/)")
    proto = saved_model_pb2.SavedModel()
    try:
        with open(pb, "rb") as f:
            proto.ParseFromString(f.read())
    except DecodeError as e:
        raise UntrustedModelError(f"{pb}: not a readable SavedModel graph ({e})") from None
    return proto


def _called(node):
    """The names of the functions a NodeDef calls through its attributes (f, then_branch, ...)."""
    names = []
    for value in node.attr.values():
        if value.HasField("func"):
            names.append(value.func.name)
        names.extend(f.name for f in value.list.func)
    return names


def graph_ops(folder):
    """{op name: where it is} of every node of `folder`'s SavedModel (top level and functions).

    Args:
        folder: a SavedModel folder.

    Returns:
        dict op -> "graph" or "function <name>" (the first place the op was seen).
    """
    found = {}
    for meta in _read(folder).meta_graphs:
        for node in meta.graph_def.node:
            found.setdefault(node.op, "graph")
        for fn in meta.graph_def.library.function:
            for node in fn.node_def:
                found.setdefault(node.op, f"function {fn.signature.name}")
    return found


def _saver_functions(meta):
    """The functions only the saver's save / restore nodes call (they may use CHECKPOINT_OPS)."""
    saver_nodes = {meta.saver_def.save_tensor_name.split(":")[0], meta.saver_def.restore_op_name.split(":")[0]}
    saver, others = set(), set()
    for node in meta.graph_def.node:
        (saver if node.name in saver_nodes else others).update(_called(node))
    for fn in meta.graph_def.library.function:
        for node in fn.node_def:
            others.update(_called(node))
    others.update(meta.object_graph_def.concrete_functions.keys())
    return saver - others


def check_saved_model(folder):
    """Refuses a SavedModel holding an op outside the allowlist, before anything loads it.

    Args:
        folder: a SavedModel folder (holding saved_model.pb).

    Returns:
        `folder`.

    Raises:
        UntrustedModelError: an op that an fcn_keras export does not hold (the message names
            the op, where it is, and the file), an unreadable or oversized saved_model.pb.
    """
    folder = os.fspath(folder)
    pb = os.path.join(folder, "saved_model.pb")
    for meta in _read(folder).meta_graphs:
        saver = _saver_functions(meta)
        places = [("the top-level graph", meta.graph_def.node, ALLOWED_OPS)]
        places += [(f"function {fn.signature.name}", fn.node_def,
                    ALLOWED_OPS | CHECKPOINT_OPS if fn.signature.name in saver else ALLOWED_OPS)
                   for fn in meta.graph_def.library.function]
        for where, nodes, allowed in places:
            for node in nodes:
                if node.op not in allowed:
                    raise _io.naming_arguments(UntrustedModelError(
                        f"{pb}: refused to load: op {node.op!r} (node {node.name!r} in {where}) is not one "
                        "an fcn_keras export holds; a SavedModel is a program and this one could read or "
                        "write files. Load it only if you trust its source as a program: pass trust=True"),
                        "trust")
    return folder
