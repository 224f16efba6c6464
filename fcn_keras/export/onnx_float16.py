"""Half-size ONNX for format="onnx" / "web", quantize="float16": weights and activations float16.

The float32 ONNX export is rewritten in place with onnxruntime's own float16 converter
(`onnxruntime.transformers.float16.convert_float_to_float16`) keeping the graph's interface:
input `image` uint8 raw pixels, outputs `labels` uint8 and `scores` float32 (a Cast at the end).
ArgMax stays in float32 (on the scores cast back), as onnxruntime has no float16 ArgMax on
every backend. The file is half the size; the metadata_props are kept.
"""

from fcn_keras import _io


def quantize_float16(path):
    """Rewrites the float32 ONNX file `path` (weights inside) with float16 weights and compute.

    Returns:
        `path`.
    """
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    half = convert_float_to_float16(onnx.load(path), keep_io_types=True, op_block_list=["ArgMax"])
    return _io.atomic_write(path, lambda tmp: onnx.save(half, tmp))
