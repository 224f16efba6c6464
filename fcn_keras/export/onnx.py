"""ONNX through tf2onnx, with a lean route for large models.

The obvious routes copy the weights many times: tf2onnx `large_model=True` peaked at 17.4 GB
and `model.export(format="onnx")` was killed at 23 GB for FCN-8s VGG16 (538 MB of weights).
Here the graph is converted *without* its weights and the weights are attached afterwards:

1. tf2onnx converts `serve(image, *weights)`: the serving function written with
   `model.stateless_call`, every model variable a graph input (`w_0000`, ...). The converted
   graph holds no weight data (a few hundred KB), so conversion is fast and small.
2. The nodes that only re-layout weights (Transpose of conv kernels, Reshape/Squeeze of
   biases, the Slice of a grouped kernel, ...) are evaluated here in NumPy, one variable at a
   time, and their results become initializers; the weight inputs are removed.
3. The initializers are streamed to the file one tensor at a time (protobuf allows the graph's
   repeated `initializer` field to be appended after the rest of the graph), so the weights
   are never held as a whole protobuf in memory. Models over ~1.8 GB (or
   `external_data=True`) get their weights in `<path>.data` (ONNX external data) instead.

Graph: input `image` uint8 (batch, height, width, 3) with named dynamic dims; outputs `labels`
uint8 (batch, height, width) and `scores` float32 (batch, height, width, C): the shared dim
names say that the outputs follow the input's size. The model's metadata_props hold
"class_names" and "palette" (JSON) and "fcn_keras", the whole export metadata (JSON).
"""

import json
import os
import shutil

import numpy as np

from fcn_keras import _io

from . import _common
from ._runner import Runner

NAME = "onnx"
SUFFIX = ".onnx"
DESCRIPTION = "a .onnx file"
EXTRA_SUFFIXES = (".data",)  # external weights, `<path>.data`
QUANTIZE = ("float32", "float16", "int8")  # float16: onnx_float16.py; int8: QDQ, onnx_int8.py
NO_BFLOAT16 = ("ONNX's Conv takes float16, float32 or float64 only (onnxruntime refuses a bfloat16 Conv "
               "as an invalid graph): export float32 here, or TFLite with quantize='int8' for a fast "
               "CPU path")  # checked with onnxruntime 1.32
OPTIONS = ("opset",)  # `formats.py`: recorded in the metadata, checked 11..18
DIM_NAMES = ("batch", "height", "width")

DEFAULT_OPSET = 17  # tf2onnx 1.17 converts opsets 11..18; 19 and above fail ("Opset 19 is not supported yet")
_SINGLE_FILE_LIMIT = 1_800_000_000
_FOLDABLE = {"Transpose", "Reshape", "Squeeze", "Unsqueeze", "Slice", "Cast", "Identity", "Concat", "Gather"}


def _len_field(field_number, payload_len):
    """The key and length of a length-delimited protobuf field of `payload_len` bytes."""
    return _io.protobuf_key(field_number) + _io.varint(payload_len)


def convert_graph(model, opset=DEFAULT_OPSET, input_size=None):
    """(ModelProto without weight data, list of keras variables in input order)."""
    import tensorflow as tf
    import tf2onnx

    trainable = list(model.trainable_variables)
    non_trainable = list(model.non_trainable_variables)
    variables = trainable + non_trainable
    n_t = len(trainable)
    ws_holder = {}

    def call(x):
        ws = ws_holder["ws"]
        logits, _ = model.stateless_call(list(ws[:n_t]), list(ws[n_t:]), x, training=False)
        return logits

    serve = _common.serving_fn(model, "uint8", call=call)

    def fn(image, *ws):
        ws_holder["ws"] = ws
        return serve(image)

    specs = [_common.input_spec(input_size, "uint8")]
    specs += [tf.TensorSpec(v.shape, v.dtype, name=f"w_{i:04d}") for i, v in enumerate(variables)]
    proto, _ = tf2onnx.convert.from_function(tf.function(fn), input_signature=specs, opset=opset)
    _name_dims(proto.graph)
    return proto, variables


def _name_dims(graph):
    """Names the dynamic N, H, W dims of the image input and both outputs batch / height / width.

    tf2onnx gives each dynamic dim a generated name (`unk__1051`), unrelated between the input
    and the outputs; a shared name tells runtimes and readers that the outputs' N, H, W are
    the input's.
    """
    renamed = {}
    for value in [*graph.input, *graph.output]:
        dims = value.type.tensor_type.shape.dim
        for dim, name in zip(dims, DIM_NAMES):
            if not dim.HasField("dim_value"):
                if dim.dim_param:
                    renamed[dim.dim_param] = name
                dim.dim_param = name
    for value in graph.value_info:  # intermediate shapes that share the generated names
        for dim in value.type.tensor_type.shape.dim:
            if dim.dim_param in renamed:
                dim.dim_param = renamed[dim.dim_param]


def _eval(name, producers, variables):
    """NumPy value of a folded tensor (weights fetched from the keras variables on demand).

    `producers`: as `fold_weight_layouts` returns them."""
    from onnx import helper, numpy_helper

    kind = producers[name]
    if kind[0] == "init":
        return numpy_helper.to_array(kind[1])
    if kind[0] == "weight":
        return np.asarray(variables[kind[1]].numpy())
    node = kind[1]
    ins = [(_eval(i, producers, variables) if i else None) for i in node.input]
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    op = node.op_type
    x = ins[0]
    if op == "Identity":
        return x
    if op == "Transpose":
        return np.ascontiguousarray(np.transpose(x, attrs.get("perm")))
    if op == "Reshape":
        shape = [int(s) for s in ins[1]]
        shape = [x.shape[i] if s == 0 and not attrs.get("allowzero", 0) else s for i, s in enumerate(shape)]
        return x.reshape(shape)
    if op == "Squeeze":
        axes = ins[1] if len(ins) > 1 and ins[1] is not None else attrs.get("axes")
        return np.squeeze(x, axis=None if axes is None else tuple(int(a) for a in axes))
    if op == "Unsqueeze":
        axes = ins[1] if len(ins) > 1 else attrs.get("axes")
        out = x
        for a in sorted(int(a) % (x.ndim + len(axes)) for a in axes):
            out = np.expand_dims(out, a)
        return out
    if op == "Cast":
        from onnx import helper as h

        return x.astype(h.tensor_dtype_to_np_dtype(attrs["to"]))
    if op == "Concat":
        return np.concatenate([i for i in ins], axis=attrs["axis"])
    if op == "Gather":
        return np.take(x, ins[1], axis=attrs.get("axis", 0))
    if op == "Slice":
        starts, ends = ins[1], ins[2]
        axes = ins[3] if len(ins) > 3 and ins[3] is not None else range(len(starts))
        steps = ins[4] if len(ins) > 4 and ins[4] is not None else [1] * len(starts)
        sl = [slice(None)] * x.ndim
        for s, e, a, st in zip(starts, ends, axes, steps):
            sl[int(a)] = slice(int(s), int(e), int(st))
        return np.ascontiguousarray(x[tuple(sl)])
    raise AssertionError(f"not foldable: {op}")  # pragma: no cover - guarded by _FOLDABLE


def attach_weights(proto, variables, path, external_data=None):
    """Folds weight re-layouts, turns weight inputs into initializers, writes `path`.

    Args:
        proto: the ModelProto of `convert_graph` (weights as graph inputs `w_0000`, ...).
        variables: the keras variables in input order.
        path: the .onnx file to write.
        external_data: weights in `<path>.data` (None: only above 1.8 GB).

    Returns:
        The list of files written (path, and path + ".data" with external data).
    """
    producers, needed = fold_weight_layouts(proto.graph, variables)
    tensors = ((name, np.ascontiguousarray(_eval(name, producers, variables))) for name in needed)
    total = sum(int(np.prod(v.shape)) * np.dtype(v.dtype).itemsize for v in variables)
    if external_data is None:
        external_data = total > _SINGLE_FILE_LIMIT
    if external_data:
        return _write_external(proto, tensors, path)
    _stream_model(proto, tensors, path)
    return [path]


def fold_weight_layouts(graph, variables):
    """Removes from `graph` the nodes that only re-layout weights, and the weight inputs.

    A node is folded when it is a re-layout (`_FOLDABLE`) whose inputs are all constants and
    depend on a weight; its outputs are then computed later, in NumPy (`_eval`). The graph
    keeps the other nodes, the small initializers they use and no weight input.

    Args:
        graph: the GraphProto of `convert_graph`, changed in place.
        variables: the keras variables, graph inputs `w_0000`, ... in this order.

    Returns:
        (producers {tensor name: ("weight", i) | ("node", node, k) | ("init", TensorProto)},
        the names of the folded or raw weight tensors the remaining graph consumes, in order).
    """
    weight_names = {f"w_{i:04d}": i for i in range(len(variables))}
    inits = {t.name: t for t in graph.initializer}
    producers = {name: ("weight", i) for name, i in weight_names.items()}
    const_names = set(inits) | set(weight_names)
    keep_nodes = []
    for node in graph.node:
        ins = [i for i in node.input if i]
        if (node.op_type in _FOLDABLE and ins and all(i in const_names for i in ins)
                and any(_depends_on_weight(i, producers) for i in ins)):
            for k, out in enumerate(node.output):
                producers[out] = ("node", node, k)
                const_names.add(out)
        else:
            keep_nodes.append(node)
    used = {i for n in keep_nodes for i in n.input} | {o.name for o in graph.output}
    needed = [name for name in producers if name in used]  # folded or raw weights still consumed
    for name, t in inits.items():  # the folded nodes read them; the graph keeps the used ones
        producers.setdefault(name, ("init", t))

    del graph.node[:]
    graph.node.extend(keep_nodes)
    small = [t for t in inits.values() if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(small)
    inputs = [i for i in graph.input if i.name not in weight_names]
    del graph.input[:]
    graph.input.extend(inputs)
    return producers, needed


def _tensor_header(name, arr):
    """A TensorProto named `name` with `arr`'s dtype and shape and no data."""
    from onnx import numpy_helper

    t = numpy_helper.from_array(np.zeros((0,), arr.dtype), name)
    del t.dims[:]
    t.dims.extend(arr.shape)
    t.ClearField("raw_data")
    return t


def _write_external(proto, tensors, path, align=64):
    """Writes the weights to `<path>.data` (ONNX external data, each tensor at an offset
    aligned to `align` bytes) and the model, whose initializers point into it, to `path`.

    Args:
        proto: the ModelProto without its weights; tensors: (name, array) pairs, one at a time.

    Returns:
        [path, path + ".data"].
    """
    import onnx

    data_path = path + ".data"
    location = os.path.basename(data_path)
    offset = 0
    with open(data_path, "wb") as f:
        for name, arr in tensors:
            pad = (-offset) % align
            f.write(b"\0" * pad)
            offset += pad
            t = _tensor_header(name, arr)
            t.data_location = onnx.TensorProto.EXTERNAL
            for k, v in (("location", location), ("offset", str(offset)), ("length", str(arr.nbytes))):
                e = t.external_data.add()
                e.key, e.value = k, v
            f.write(arr.tobytes())
            offset += arr.nbytes
            proto.graph.initializer.append(t)
            del arr  # one weight tensor in memory at a time
    with open(path, "wb") as f:
        f.write(proto.SerializeToString())
    return [path, data_path]


def _stream_model(proto, tensors, path):
    """Writes `proto` with `tensors` appended as initializers to `path`, one tensor at a time.

    Protobuf allows a repeated field to be appended after the rest of its message: the graph
    is written with its small parts first, then each initializer (header, then raw bytes);
    the initializers go to a scratch file `<path>.body` first, since the graph's length
    prefix comes before them.

    Args:
        proto: the ModelProto without its weights (its graph is cleared); tensors: (name, array)
            pairs, one at a time.
    """
    import onnx

    init_field = onnx.GraphProto.DESCRIPTOR.fields_by_name["initializer"].number
    raw_field = onnx.TensorProto.DESCRIPTOR.fields_by_name["raw_data"].number
    graph_field = onnx.ModelProto.DESCRIPTOR.fields_by_name["graph"].number
    body_path = path + ".body"
    try:
        body_len = 0
        with open(body_path, "wb") as body:
            for name, arr in tensors:
                head = _tensor_header(name, arr).SerializeToString()
                payload_len = len(head) + len(_len_field(raw_field, arr.nbytes)) + arr.nbytes
                chunk = _len_field(init_field, payload_len) + head + _len_field(raw_field, arr.nbytes)
                body.write(chunk)
                body.write(memoryview(arr.reshape(-1).view(np.uint8)))
                body_len += len(chunk) + arr.nbytes
                del arr  # one weight tensor in memory at a time
        graph_bytes = proto.graph.SerializeToString()
        proto.ClearField("graph")
        head = proto.SerializeToString()
        with open(path, "wb") as f:
            f.write(head)
            f.write(_len_field(graph_field, len(graph_bytes) + body_len))
            f.write(graph_bytes)
            with open(body_path, "rb") as body:
                shutil.copyfileobj(body, f, 16 << 20)
    finally:
        if os.path.exists(body_path):
            os.remove(body_path)


def _depends_on_weight(name, producers):
    kind = producers.get(name)
    return kind is not None and kind[0] != "init" and (kind[0] == "weight" or any(
        _depends_on_weight(i, producers) for i in kind[1].input if i))


def write_onnx(model, path, *, opset=DEFAULT_OPSET, input_size=None, external_data=None, meta):
    """Converts and writes `path` (+ `path.data` with external data). No checks, no atomicity.

    Args:
        model: the keras model.
        path: the .onnx file to write.
        opset: ONNX opset, 11..18.
        input_size: None (dynamic batch, height, width) or (h, w): input (1, h, w, 3).
        external_data: weights in `path.data` (None: only above 1.8 GB).
        meta: the export metadata; its "class_names" and "palette" are stored as metadata_props
            of their own too.

    Returns:
        The files written.
    """
    proto, variables = convert_graph(model, opset=opset, input_size=input_size)
    proto.producer_name = "fcn_keras"
    for k, v in (("class_names", meta["class_names"]), ("palette", meta["palette"]),
                 (_common.METADATA_NAME, meta)):
        p = proto.metadata_props.add()
        p.key, p.value = k, json.dumps(v)
    return attach_weights(proto, variables, path, external_data=external_data)


def write(model, path, options):
    """`write_onnx` with `export`'s `formats.WriteOptions` (quantize="int8": then QDQ-quantised
    on `options.calibration`; "float16": then halved); returns the files written."""
    files = write_onnx(model, path, opset=options.opset, input_size=options.input_size,
                       external_data=options.external_data, meta=options.meta)
    if options.quantize == "int8":
        from .onnx_int8 import quantize_int8

        quantize_int8(path, options.calibration)
    elif options.quantize == "float16":
        from .onnx_float16 import quantize_float16

        quantize_float16(path)
    return files


def is_artefact(path):
    """True for a file whose name ends in .onnx."""
    return os.path.isfile(path) and os.fspath(path).endswith(SUFFIX)


def runtime_name():
    import onnxruntime

    return f"onnxruntime {onnxruntime.__version__} CPUExecutionProvider"


def session(path, num_threads=None):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = num_threads or os.cpu_count() or 1
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(os.fspath(path), opts, providers=["CPUExecutionProvider"])


class ONNXRunner(Runner):
    """Runs an exported .onnx file in onnxruntime (see `fcn_keras.export.runner`)."""

    def __init__(self, path, num_threads=None):
        self.sess = session(path, num_threads)
        shape = self.sess.get_inputs()[0].shape
        self.fixed_size = tuple(shape[1:3]) if all(isinstance(s, int) for s in shape[1:3]) else None

    def prepare(self, images):
        return np.ascontiguousarray(images, dtype=np.uint8)

    def run(self, prepared):
        labels, scores = self.sess.run(["labels", "scores"], {"image": prepared})
        return labels, scores


def embedded_metadata(path):
    """The metadata dict stored in a .onnx file's metadata_props by `export` ({} if none)."""
    import onnx

    props = {p.key: p.value for p in onnx.load(os.fspath(path), load_external_data=False).metadata_props}
    if _common.METADATA_NAME in props:
        return json.loads(props[_common.METADATA_NAME])
    return {k: json.loads(props[k]) for k in ("class_names", "palette") if k in props}


runner = ONNXRunner
