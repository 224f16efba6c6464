"""The Caffe reader and writer: both NetParameter layouts, both shape encodings, bad files."""

import struct

import numpy as np
import pytest

from fcn_keras.weights import caffe_pb
from fcn_keras.weights.caffemodel import CaffeModelError, read_caffemodel, write_caffemodel


def _layers():
    rng = np.random.default_rng(0)
    return [
        ("conv1", "Convolution", [rng.normal(size=(4, 3, 3, 3)).astype("f4"), rng.normal(size=(4,)).astype("f4")]),
        ("fc6", "InnerProduct", [rng.normal(size=(6, 36)).astype("f4"), rng.normal(size=(6,)).astype("f4")]),
        ("up", "Deconvolution", [rng.normal(size=(6, 6, 4, 4)).astype("f4")]),
    ]


@pytest.mark.parametrize("legacy_v1", [False, True])
def test_round_trip(tmp_path, legacy_v1):
    path = write_caffemodel(tmp_path / "m.caffemodel", _layers(), name="tiny", legacy_v1=legacy_v1)
    net = read_caffemodel(path)
    assert net.name == "tiny" and net.legacy_v1 == legacy_v1
    assert [(layer.name, layer.type) for layer in net.layers] == [(n, t) for n, t, _ in _layers()]
    for layer, (_, _, blobs) in zip(net.layers, _layers()):
        for got, want in zip(layer.blobs, blobs):
            if legacy_v1:  # num/channels/height/width: leading axes of 1
                assert got.shape == (1,) * (4 - want.ndim) + want.shape
            else:
                assert got.shape == want.shape
            np.testing.assert_array_equal(got.reshape(want.shape), want)
    assert not list(tmp_path.glob("*.tmp-*"))


def test_v1_file_is_what_protobuf_sees(tmp_path):
    """The legacy file really uses the V1 fields: `layers` (2), enum type (5), blobs (6)."""
    path = write_caffemodel(tmp_path / "v1.caffemodel", _layers(), legacy_v1=True)
    with open(path, "rb") as f:
        msg = caffe_pb.NetParameter.FromString(f.read())
    assert len(msg.layer) == 0 and [layer.type for layer in msg.layers] == [4, 14, 39]
    assert (msg.layers[1].blobs[0].num, msg.layers[1].blobs[0].channels,
            msg.layers[1].blobs[0].height, msg.layers[1].blobs[0].width) == (1, 1, 6, 36)


def test_double_data_and_unpacked_floats(tmp_path):
    net = caffe_pb.NetParameter(name="n")
    layer = net.layer.add(name="a", type="Convolution")
    blob = layer.blobs.add()
    blob.shape.dim.extend([2, 2])
    blob.double_data = np.arange(4, dtype="<f8").tobytes()
    raw = net.SerializeToString()
    # A second layer whose floats use the unpacked encoding (one fixed32 per value, wire type 5).
    shape = caffe_pb.BlobProto()
    shape.shape.dim.extend([3])
    blob_bytes = shape.SerializeToString() + b"".join(b"\x2d" + struct.pack("<f", v) for v in (1.5, -2.0, 3.25))
    layer_bytes = caffe_pb.LayerParameter(name="b", type="InnerProduct").SerializeToString()
    layer_bytes += b"\x3a" + bytes([len(blob_bytes)]) + blob_bytes  # field 7, length-delimited
    raw += b"\xa2\x06" + bytes([len(layer_bytes)]) + layer_bytes  # field 100, length-delimited
    path = tmp_path / "mixed.caffemodel"
    path.write_bytes(raw)
    a, b = read_caffemodel(path).layers
    np.testing.assert_array_equal(a.blobs[0], np.arange(4, dtype="f4").reshape(2, 2))
    np.testing.assert_array_equal(b.blobs[0], np.array([1.5, -2.0, 3.25], "f4"))


def test_not_a_caffemodel(tmp_path):
    path = tmp_path / "page.caffemodel"
    path.write_bytes(b"<html>404 Not Found</html>\xff\xff")
    with pytest.raises(CaffeModelError, match="page.caffemodel"):
        read_caffemodel(path)


def test_truncated_file(tmp_path):
    path = write_caffemodel(tmp_path / "m.caffemodel", _layers())
    data = open(path, "rb").read()
    cut = tmp_path / "cut.caffemodel"
    cut.write_bytes(data[: len(data) - 50])
    with pytest.raises(CaffeModelError, match="cut.caffemodel"):
        read_caffemodel(cut)


def test_no_parameters(tmp_path):
    net = caffe_pb.NetParameter(name="deploy-only")
    net.layer.add(name="relu", type="ReLU")
    path = tmp_path / "empty.caffemodel"
    path.write_bytes(net.SerializeToString())
    with pytest.raises(CaffeModelError, match="no layer with parameters"):
        read_caffemodel(path)


def test_blob_size_must_match_shape(tmp_path):
    net = caffe_pb.NetParameter()
    blob = net.layer.add(name="conv9", type="Convolution").blobs.add()
    blob.shape.dim.extend([2, 3])
    blob.data = np.zeros(5, "<f4").tobytes()
    path = tmp_path / "bad.caffemodel"
    path.write_bytes(net.SerializeToString())
    with pytest.raises(CaffeModelError, match=r"conv9.*\(2, 3\) needs 6 values.*holds 5"):
        read_caffemodel(path)


def _net_bytes(*layers):
    """A NetParameter of `layers` [(name, [BlobProto])], serialised."""
    net = caffe_pb.NetParameter(name="hostile")
    for name, blobs in layers:
        layer = net.layer.add(name=name, type="Convolution")
        for b in blobs:
            layer.blobs.add().CopyFrom(b)
    return net.SerializeToString()


def _blob(shape=None, values=1, legacy=None):
    b = caffe_pb.BlobProto()
    if shape is not None:
        b.shape.dim.extend(shape)
    if legacy is not None:
        b.num, b.channels, b.height, b.width = legacy
    b.data = np.ones(values, "<f4").tobytes()
    return b


def test_unpacked_floats_are_decoded_without_a_python_object_per_value(tmp_path):
    """One million values, each its own fixed32 field: decoded with NumPy from the bytes. The
    old reader built a Python int (and a field object) per value: tens of bytes each, where
    NumPy needs a few copies of 4."""
    import tracemalloc

    n = 1 << 20
    values = np.random.default_rng(0).normal(size=n).astype("<f4")
    head = caffe_pb.BlobProto()
    head.shape.dim.extend([n // 1024, 1024])
    records = np.empty((n, 5), np.uint8)
    records[:, 0] = 0x2D  # field 5, wire type 5 (fixed32)
    records[:, 1:] = values.view(np.uint8).reshape(n, 4)
    blob = head.SerializeToString() + records.tobytes()
    layer = caffe_pb.LayerParameter(name="fc", type="InnerProduct").SerializeToString()
    layer += b"\x3a" + write_varint(len(blob)) + blob
    path = tmp_path / "unpacked.caffemodel"
    path.write_bytes(b"\xa2\x06" + write_varint(len(layer)) + layer)
    tracemalloc.start()
    try:
        net = read_caffemodel(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    np.testing.assert_array_equal(net.layers[0].blobs[0].reshape(-1), values)
    assert peak < 8 * values.nbytes, f"peak {peak / values.nbytes:.1f} x the values"


def write_varint(n):
    from fcn_keras.weights.caffemodel import _varint

    return _varint(n)


def test_too_many_layers_are_refused_before_parsing(tmp_path):
    from fcn_keras.weights.caffemodel import MAX_LAYERS

    path = tmp_path / "many.caffemodel"
    path.write_bytes(_net_bytes(*[(f"l{i}", [_blob([1])]) for i in range(MAX_LAYERS + 1)]))
    with pytest.raises(CaffeModelError, match=rf"many\.caffemodel: more than {MAX_LAYERS} layers"):
        read_caffemodel(path)


@pytest.mark.parametrize("blob, says", [
    (_blob([-1, -6], 6), r"dimensions must be >= 0. Received: shape=\(-1, -6\)"),
    (_blob([2, -3], 0), r"dimensions must be >= 0"),
    (_blob(legacy=(-2, 1, 1, -3), values=6), r"dimensions must be >= 0"),
    (_blob([1] * 9, 1), r"at most 8 axes. Received: 9 axes"),
    (_blob([2 ** 40, 2 ** 40, 2 ** 40], 8), r"needs 1329227995784915872903807060280344576 values but the "
                                             r"file holds 8"),
], ids=["negative", "negative-empty", "negative-legacy", "nine-axes", "overflowing-product"])
def test_bad_blob_shapes_name_the_file_and_layer(tmp_path, blob, says):
    path = tmp_path / "shapes.caffemodel"
    path.write_bytes(_net_bytes(("conv7", [blob])))
    with pytest.raises(CaffeModelError, match=rf"shapes\.caffemodel: layer 'conv7' blob 0: .*{says}"):
        read_caffemodel(path)
