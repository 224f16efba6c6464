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
import os

import numpy as np
from google.protobuf import message as _message

from fcn_keras._io import atomic_write
from fcn_keras.weights import caffe_pb


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


def _blob_shape(blob):
    if blob.HasField("shape"):
        return tuple(int(d) for d in blob.shape.dim)
    legacy = (blob.num, blob.channels, blob.height, blob.width)
    if any(legacy):
        return tuple(int(d) for d in legacy)
    return None


def _unpacked_floats(blob, field_number, fmt):
    """Values written with the unpacked encoding (one fixed32/fixed64 per value)."""
    try:
        from google.protobuf import unknown_fields
    except ImportError:  # pragma: no cover - protobuf < 4.21
        return None
    wire = 5 if fmt == "<f" else 1
    values = [
        field.data for field in unknown_fields.UnknownFieldSet(blob)
        if field.field_number == field_number and field.wire_type == wire
    ]
    if not values:
        return None
    size = 4 if wire == 5 else 8
    raw = b"".join(int(v).to_bytes(size, "little") for v in values)
    return np.frombuffer(raw, dtype=fmt).astype(np.float32)


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
        values = _unpacked_floats(blob, 5, "<f")
        if values is None:
            values = _unpacked_floats(blob, 8, "<d")
        if values is None:
            values = np.zeros((0,), np.float32)
    shape = _blob_shape(blob)
    if shape is None:
        shape = (values.size,)
    expected = int(np.prod(shape, dtype=np.int64))
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
            parameters, or a blob's data does not match its shape.
    """
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise CaffeModelError(f"Cannot read the caffemodel: {e}. Received: path={path!r}") from e
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


def _key(number, wire_type=2):
    return _varint((number << 3) | wire_type)


def _varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if not n:
            out.append(b)
            return bytes(out)
        out.append(b | 0x80)


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
