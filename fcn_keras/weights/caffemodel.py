"""Read and write Caffe `.caffemodel` files without Caffe.

A `.caffemodel` is a serialised `NetParameter`. Its layers are either in the current
`layer` field (LayerParameter, type as a string) or in the legacy V1 `layers` field
(V1LayerParameter, type as an enum); a blob's shape is either `shape.dim` or the legacy
`num/channels/height/width` quadruple. `read_caffemodel` returns the layers that carry
blobs as `CaffeLayer(name, type, blobs)` with float32 NumPy blobs in Caffe's own layout
(conv OIHW, deconv IOHW, inner product (out, in)); `fcn_keras.weights.mapping` turns
them into Keras weights.
"""

import dataclasses
import math
import os

import numpy as np
from google.protobuf import message as _message

from fcn_keras._io import atomic_write, protobuf_key as _key, varint as _varint
from fcn_keras.weights import caffe_pb


MAX_LAYERS = 4096  # layers in a file (VGG16 FCN-8s has about 50, with those without weights)
MAX_BLOBS = 16384  # blobs in all layers
MAX_FIELDS = 1 << 16  # fields in one layer (its name, type, parameters, blobs...)
MAX_AXES = 8  # axes of a blob (Caffe's own limit is 32; FCNs use 4)


class CaffeModelError(ValueError):
    """A `.caffemodel` that cannot be read, or that does not fit the model."""


@dataclasses.dataclass
class CaffeLayer:
    """One Caffe layer with parameters: `blobs` are float32 arrays in Caffe's layout
    (convolution OIHW, deconvolution IOHW, inner product (out, in))."""

    name: str
    type: str
    blobs: list


@dataclasses.dataclass
class CaffeNet:
    """The parameter-carrying layers of a `.caffemodel`, in file order."""

    name: str
    layers: list
    path: str = ""
    legacy_v1: bool = False


def _blob_shape(blob, where):
    """The blob's shape as Python ints, validated: at most `MAX_AXES` axes, none negative;
    None when the blob states none."""
    if blob.HasField("shape"):
        if len(blob.shape.dim) > MAX_AXES:
            raise CaffeModelError(f"{where}: a blob may have at most {MAX_AXES} axes. Received: "
                                  f"{len(blob.shape.dim)} axes")
        shape = tuple(int(d) for d in blob.shape.dim)
    else:
        legacy = (blob.num, blob.channels, blob.height, blob.width)
        if not any(legacy):
            return None
        shape = tuple(int(d) for d in legacy)
    if any(d < 0 for d in shape):
        raise CaffeModelError(f"{where}: a blob's dimensions must be >= 0. Received: shape={shape}")
    return shape


def _read_varint(raw, pos):
    result, shift = 0, 0
    while True:
        if pos >= len(raw) or shift > 63:
            raise CaffeModelError("a truncated or malformed protobuf varint")
        b = raw[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def _fields(raw, start=0, end=None):
    """Yields (field number, wire type, payload start, payload end) of the protobuf message in
    raw[start:end], without decoding payloads."""
    pos, end = start, len(raw) if end is None else end
    while pos < end:
        key, pos = _read_varint(raw, pos)
        wire = key & 7
        if wire == 0:
            _, after = _read_varint(raw, pos)
        elif wire == 1:
            after = pos + 8
        elif wire == 2:
            length, pos = _read_varint(raw, pos)
            after = pos + length
        elif wire == 5:
            after = pos + 4
        else:
            raise CaffeModelError(f"unsupported protobuf wire type {wire}")
        if after > end:
            raise CaffeModelError("a protobuf field runs past the end of its message")
        yield key >> 3, wire, pos, after
        pos = after


def _check_counts(raw, path):
    """Refuses, before protobuf parses them, files of more than `MAX_LAYERS` layers,
    `MAX_BLOBS` blobs or `MAX_FIELDS` fields in a layer (each costs memory when parsed)."""
    layers = blobs = 0
    try:
        for number, wire, start, end in _fields(raw):
            if wire != 2 or number not in (2, 100):  # V1 `layers`, `layer`
                continue
            layers += 1
            if layers > MAX_LAYERS:
                raise CaffeModelError(f"{path}: more than {MAX_LAYERS} layers; not a model this reader accepts")
            blob_field = 6 if number == 2 else 7
            for n, (field, _, _, _) in enumerate(_fields(raw, start, end)):
                blobs += field == blob_field
                if n >= MAX_FIELDS:
                    raise CaffeModelError(f"{path}: layer {layers} has more than {MAX_FIELDS} fields; not a "
                                          "model this reader accepts")
                if blobs > MAX_BLOBS:
                    raise CaffeModelError(f"{path}: more than {MAX_BLOBS} blobs; not a model this reader accepts")
    except CaffeModelError as e:
        if str(e).startswith(path):
            raise
        raise CaffeModelError(f"Expected a Caffe model (a binary NetParameter .caffemodel): {e}. "
                              f"Received: path={path!r}") from None


def _unpacked_floats(blob, field_number, dtype):
    """Values written with the unpacked encoding (one fixed32 / fixed64 field per value), which
    the schema leaves as unknown fields: found in the blob's bytes as runs of (key, value)
    records and decoded with NumPy, no Python object per value."""
    raw = blob.SerializeToString()  # known fields and the unknown ones, as they were
    size = np.dtype(dtype).itemsize
    key = (field_number << 3) | (5 if size == 4 else 1)  # one byte for fields 5 and 8
    buf = np.frombuffer(raw, np.uint8)
    runs, pos = [], 0
    while pos < len(raw):
        if raw[pos] == key:
            records = (len(raw) - pos) // (1 + size)
            block = buf[pos:pos + records * (1 + size)].reshape(records, 1 + size)
            other = np.flatnonzero(block[:, 0] != key)
            n = int(other[0]) if other.size else records
            runs.append(block[:n, 1:])
            pos += n * (1 + size)
            continue
        _, _, _, pos = next(_fields(raw, pos))
    if not runs:
        return None
    return np.ascontiguousarray(np.concatenate(runs)).view(dtype).reshape(-1).astype(np.float32)


def _blob_values(blob, where):
    if blob.data:
        raw = blob.data
        if len(raw) % 4:
            raise CaffeModelError(f"{where}: expected whole float32 values (4 bytes each). Received: {len(raw)} bytes")
        values = np.frombuffer(raw, dtype="<f4")
    elif blob.double_data:
        raw = blob.double_data
        if len(raw) % 8:
            raise CaffeModelError(f"{where}: expected whole float64 values (8 bytes each). Received: {len(raw)} bytes")
        values = np.frombuffer(raw, dtype="<f8").astype(np.float32)
    else:
        try:
            values = _unpacked_floats(blob, 5, "<f4")
            if values is None:
                values = _unpacked_floats(blob, 8, "<f8")
        except CaffeModelError as e:
            raise CaffeModelError(f"{where}: {e}") from None
        if values is None:
            values = np.zeros((0,), np.float32)
    shape = _blob_shape(blob, where)
    if shape is None:
        shape = (values.size,)
    expected = math.prod(shape)  # a Python int: no overflow
    if values.size != expected:
        raise CaffeModelError(
            f"{where}: the blob's shape {shape} needs {expected} values but the file holds {values.size}")
    return values.reshape(shape)


def read_caffemodel(path):
    """Parses a `.caffemodel` without Caffe or network.

    Args:
        path: the file.

    Returns:
        A `CaffeNet` of its layers that carry blobs, in file order.

    Raises:
        CaffeModelError: naming the file, when it is not a NetParameter, holds no
            parameters, more than `MAX_LAYERS` layers or `MAX_BLOBS` blobs, a blob of more than
            `MAX_AXES` axes or a negative dimension, or data that does not match its shape
            (naming the layer).
    """
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise CaffeModelError(f"Cannot read the caffemodel: {e}. Received: path={path!r}") from e
    _check_counts(raw, path)
    net = caffe_pb.NetParameter()
    try:
        net.ParseFromString(raw)
    except _message.DecodeError as e:
        raise CaffeModelError(
            f"Expected a Caffe model (a binary NetParameter .caffemodel): {e}. Received: path={path!r}") from e
    del raw
    layers = []
    legacy = False
    for layer in net.layer:
        if len(layer.blobs):
            blobs = [_blob_values(b, f"{path}: layer {layer.name!r} blob {i}") for i, b in enumerate(layer.blobs)]
            layers.append(CaffeLayer(layer.name, layer.type, blobs))
    if not layers:
        for layer in net.layers:
            if len(layer.blobs):
                legacy = True
                type_name = caffe_pb.V1_LAYER_TYPES.get(layer.type, f"V1 type {layer.type}")
                blobs = [_blob_values(b, f"{path}: layer {layer.name!r} blob {i}")
                         for i, b in enumerate(layer.blobs)]
                layers.append(CaffeLayer(layer.name, type_name, blobs))
    if not layers:
        raise CaffeModelError(
            f"{path!r} holds no layer with parameters: it is not a trained .caffemodel, or it uses "
            "the pre-2014 V0 format (upgrade it with Caffe's upgrade_net_proto_binary).")
    return CaffeNet(net.name, layers, path=path, legacy_v1=legacy)


def write_caffemodel(path, layers, name="", legacy_v1=False):
    """Writes `layers` as a `.caffemodel` (a NetParameter), atomically (`fcn_keras._io.atomic_write`).

    Names, types and shapes are serialised with the schema's messages; each blob's float
    data (field 5, packed) is appended after its serialised header and streamed from the
    array's memory, which protobuf's concatenation rule makes the same message (and saves
    copying hundreds of megabytes through the protobuf runtime).

    Args:
        path: the file to write.
        layers: iterable of `CaffeLayer` or (name, type, [arrays]) in Caffe's layout.
        name: the net's name.
        legacy_v1: write the V1 `layers` field with enum types and num/channels/height/width
            shapes (blobs of more than 4 axes are refused), as old model-zoo files do.

    Returns:
        `path`.

    Raises:
        ValueError: a layer type without a V1 enum value, or a V1 blob of more than 4 axes.
    """
    path = os.fspath(path)

    def write(tmp):
        with open(tmp, "wb") as f:
            f.write(caffe_pb.NetParameter(name=name).SerializeToString())
            for item in layers:
                _write_layer(f, item, legacy_v1)

    return atomic_write(path, write)


def _layer_head(lname, ltype, legacy_v1):
    if not legacy_v1:
        return caffe_pb.LayerParameter(name=lname, type=ltype)
    if ltype not in caffe_pb.V1_LAYER_TYPE_IDS:
        raise ValueError(f"Layer {lname!r}: the type has no V1 enum value. Expected one of "
                         f"{sorted(caffe_pb.V1_LAYER_TYPE_IDS)}. Received: type={ltype!r}")
    return caffe_pb.V1LayerParameter(name=lname, type=caffe_pb.V1_LAYER_TYPE_IDS[ltype])


def _blob_head(lname, arr, legacy_v1):
    """A BlobProto's serialised fields before its data, plus the data field's key and length."""
    blob = caffe_pb.BlobProto()
    if legacy_v1:
        if arr.ndim > 4:
            raise ValueError(f"Layer {lname!r}: a V1 blob has at most 4 axes. Received: shape={arr.shape}")
        dims = (1,) * (4 - arr.ndim) + arr.shape
        blob.num, blob.channels, blob.height, blob.width = (int(d) for d in dims)
    else:
        blob.shape.dim.extend(int(d) for d in arr.shape)
    return blob.SerializeToString() + _key(5) + _varint(arr.nbytes)


def _write_layer(f, item, legacy_v1):
    lname, ltype, blobs = (item.name, item.type, item.blobs) if isinstance(item, CaffeLayer) else item
    layer_field, blob_field = (2, 6) if legacy_v1 else (100, 7)
    head = _layer_head(lname, ltype, legacy_v1).SerializeToString()
    arrays = [np.ascontiguousarray(arr, dtype="<f4") for arr in blobs]
    blob_heads = [_blob_head(lname, arr, legacy_v1) for arr in arrays]
    size = len(head) + sum(len(_key(blob_field)) + len(_varint(len(h) + a.nbytes)) + len(h) + a.nbytes
                           for h, a in zip(blob_heads, arrays))
    f.write(_key(layer_field) + _varint(size) + head)
    for blob_head, arr in zip(blob_heads, arrays):
        f.write(_key(blob_field) + _varint(len(blob_head) + arr.nbytes) + blob_head)
        f.write(memoryview(arr.reshape(-1)).cast("B"))
