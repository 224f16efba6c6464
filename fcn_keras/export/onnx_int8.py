"""Full-int8 ONNX (QDQ) with onnxruntime's static quantiser, for format="onnx" / "web", quantize="int8".

The float32 ONNX export is quantised in place: weights int8 per output channel, activations
uint8 (asymmetric), calibrated (MinMax) on the same uint8 images as the int8 TFLite route.
The QDQ form keeps the graph's interface: input `image` uint8 raw pixels (N, H, W, 3),
outputs `labels` uint8 and `scores` float32 (dequantised), so every ONNX runtime (Python
onnxruntime, ONNX Runtime Web) runs it unchanged. The metadata_props are kept.
"""

import contextlib
import logging
import sys

import numpy as np

from fcn_keras import _io


def quantize_int8(path, calibration_images):
    """Rewrites the float32 ONNX file `path` as a full-int8 QDQ model.

    Args:
        path: a .onnx file written by `write_onnx` (weights inside, no external data).
        calibration_images: uint8 (H, W, 3) images, each run once to gather activation ranges.

    Returns:
        `path`.
    """
    import onnx
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat,
                                          QuantType, quantize_static)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self._it = iter(calibration_images)

        def get_next(self):
            image = next(self._it, None)
            return None if image is None else {"image": np.asarray(image, np.uint8)[None]}

    props = list(onnx.load(path, load_external_data=False).metadata_props)

    def write(out):
        with _without_preprocessing_advice():
            quantize_static(path, out, Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            calibrate_method=CalibrationMethod.MinMax)
        proto = onnx.load(out)
        del proto.metadata_props[:]
        proto.metadata_props.extend(props)
        onnx.save(proto, out)

    return _io.atomic_write(path, write)


@contextlib.contextmanager
def _without_preprocessing_advice():
    """Drops onnxruntime's "Please consider (to run) pre-processing before quantization"
    (logged on the root logger at every call: the export is verified against the Keras model
    instead), and keeps its other root-logger warnings from configuring the caller's logging
    (`logging.warning` runs `basicConfig()` on a bare root logger): while inside, a bare root
    logger gets a plain stderr handler of its own, removed afterwards."""
    root = logging.getLogger()

    def keep(record):
        return not str(record.msg).startswith("Please consider")

    handler = None
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setLevel(logging.WARNING)
        root.addHandler(handler)
    root.addFilter(keep)
    try:
        yield
    finally:
        root.removeFilter(keep)
        if handler is not None:
            root.removeHandler(handler)
