"""A minimal Caffe protobuf schema, built in Python at import time.

Only the fields fcn_keras reads or writes are declared; every other field of a
`.caffemodel` is skipped by the protobuf parser as an unknown field. The field
numbers are Caffe's (`src/caffe/proto/caffe.proto`):

    NetParameter      name = 1, layers = 2 (V1LayerParameter), layer = 100 (LayerParameter)
    LayerParameter    name = 1, type = 2 (string), blobs = 7
    V1LayerParameter  name = 4, type = 5 (enum LayerType), blobs = 6
    BlobProto         num = 1, channels = 2, height = 3, width = 4 (legacy 4-D shape),
                      data = 5 (packed float), double_data = 8 (packed double), shape = 7
    BlobShape         dim = 1 (packed int64)

`BlobProto.data` and `double_data` are declared as `bytes`: a packed
repeated float is, on the wire, one length-delimited field whose payload is the
little-endian IEEE values back to back, so reading it as bytes gives the array
to `numpy.frombuffer` without a per-element copy (a 100 M-value fc6 blob
would otherwise take tens of seconds in Python). Files written with the
unpacked encoding (one fixed32 per value, wire type 5) land in the unknown
fields and are decoded from there (see `caffemodel._blob_values`).

No `protoc` step and no generated `_pb2` module: the descriptor is made with
`descriptor_pb2` and the classes with `message_factory`, so the schema works
with whichever protobuf runtime is installed.
"""

from google.protobuf import descriptor_pb2
from google.protobuf import descriptor_pool
from google.protobuf import message_factory

_F = descriptor_pb2.FieldDescriptorProto

# V1LayerParameter.LayerType values (caffe.proto) -> the type strings of the
# current LayerParameter format.
V1_LAYER_TYPES = {
    0: "None", 35: "AbsVal", 1: "Accuracy", 30: "ArgMax", 2: "BNLL", 3: "Concat",
    37: "ContrastiveLoss", 4: "Convolution", 5: "Data", 39: "Deconvolution",
    6: "Dropout", 32: "DummyData", 7: "EuclideanLoss", 25: "Eltwise", 38: "Exp",
    8: "Flatten", 9: "HDF5Data", 10: "HDF5Output", 28: "HingeLoss", 11: "Im2col",
    12: "ImageData", 13: "InfogainLoss", 14: "InnerProduct", 15: "LRN",
    29: "MemoryData", 16: "MultinomialLogisticLoss", 34: "MVN", 17: "Pooling",
    26: "Power", 18: "ReLU", 19: "Sigmoid", 27: "SigmoidCrossEntropyLoss",
    36: "Silence", 20: "Softmax", 21: "SoftmaxWithLoss", 22: "Split", 33: "Slice",
    23: "TanH", 24: "WindowData", 31: "Threshold",
}
V1_LAYER_TYPE_IDS = {name: num for num, name in V1_LAYER_TYPES.items()}


def _field(msg, name, number, ftype, label=_F.LABEL_OPTIONAL, type_name=None,
           packed=False):
    f = msg.field.add()
    f.name = name
    f.number = number
    f.type = ftype
    f.label = label
    if type_name:
        f.type_name = type_name
    if packed:
        f.options.packed = True
    return f


def _build_file():
    fd = descriptor_pb2.FileDescriptorProto()
    fd.name = "fcn_keras/caffe_min.proto"
    fd.package = "fcn_keras_caffe"
    fd.syntax = "proto2"
    rep = _F.LABEL_REPEATED

    shape = fd.message_type.add(name="BlobShape")
    _field(shape, "dim", 1, _F.TYPE_INT64, rep, packed=True)

    blob = fd.message_type.add(name="BlobProto")
    _field(blob, "num", 1, _F.TYPE_INT32)
    _field(blob, "channels", 2, _F.TYPE_INT32)
    _field(blob, "height", 3, _F.TYPE_INT32)
    _field(blob, "width", 4, _F.TYPE_INT32)
    _field(blob, "data", 5, _F.TYPE_BYTES)  # packed float payload
    _field(blob, "shape", 7, _F.TYPE_MESSAGE, type_name=".fcn_keras_caffe.BlobShape")
    _field(blob, "double_data", 8, _F.TYPE_BYTES)  # packed double payload

    layer = fd.message_type.add(name="LayerParameter")
    _field(layer, "name", 1, _F.TYPE_STRING)
    _field(layer, "type", 2, _F.TYPE_STRING)
    _field(layer, "blobs", 7, _F.TYPE_MESSAGE, rep, type_name=".fcn_keras_caffe.BlobProto")

    v1 = fd.message_type.add(name="V1LayerParameter")
    _field(v1, "name", 4, _F.TYPE_STRING)
    _field(v1, "type", 5, _F.TYPE_INT32)  # enum LayerType on the wire (a varint)
    _field(v1, "blobs", 6, _F.TYPE_MESSAGE, rep, type_name=".fcn_keras_caffe.BlobProto")

    net = fd.message_type.add(name="NetParameter")
    _field(net, "name", 1, _F.TYPE_STRING)
    _field(net, "layers", 2, _F.TYPE_MESSAGE, rep, type_name=".fcn_keras_caffe.V1LayerParameter")
    _field(net, "layer", 100, _F.TYPE_MESSAGE, rep, type_name=".fcn_keras_caffe.LayerParameter")
    return fd


_POOL = descriptor_pool.DescriptorPool()
_POOL.Add(_build_file())


def _cls(name):
    return message_factory.GetMessageClass(_POOL.FindMessageTypeByName("fcn_keras_caffe." + name))


BlobShape = _cls("BlobShape")
BlobProto = _cls("BlobProto")
LayerParameter = _cls("LayerParameter")
V1LayerParameter = _cls("V1LayerParameter")
NetParameter = _cls("NetParameter")
