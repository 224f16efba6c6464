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
