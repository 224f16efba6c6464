"""The MediaPipe-ready .tflite (`export(..., "tflite", target="mediapipe")`) in MediaPipe itself:
its Image Segmenter task (the `mediapipe` wheel) on three real photos, against Keras' labels;
and its TFLite Model Metadata read back with the standard schema."""

import os

import numpy as np
import pytest
from PIL import Image

from fcn_keras.data import SHAPES_CLASSES
from fcn_keras.export import ExportError, detect_format, export, read_metadata
from fcn_keras.export import tflite_mediapipe
from fcn_keras.export.verification import Verification

SIZE = (96, 128)  # the file's input (h, w): MediaPipe resizes every image to it
PHOTOS = ("astronaut.png", "chelsea.png", "coffee.png")
TARGETS = {"float32": 0.999, "float16": 0.99, "int8": 0.97}
FAST = Verification(num_images=2, latency=False)


def photos():
    """The photos resized to SIZE (Pillow bilinear), uint8 (h, w, 3)."""
    import skimage.data

    folder = os.path.dirname(skimage.data.__file__)
    return [np.asarray(Image.open(os.path.join(folder, n)).convert("RGB").resize(SIZE[::-1], Image.BILINEAR))
            for n in PHOTOS]


def mediapipe_segment(path, images):
    """[(category mask uint8 (h, w), confidence masks float32 (h, w, C))] from MediaPipe's Image Segmenter."""
    import mediapipe as mp
    from mediapipe.tasks.python import BaseOptions, vision

    options = vision.ImageSegmenterOptions(base_options=BaseOptions(model_asset_path=path),
                                           output_category_mask=True, output_confidence_masks=True)
    out = []
    with vision.ImageSegmenter.create_from_options(options) as segmenter:
        assert segmenter.labels == list(SHAPES_CLASSES)  # from the file's TENSOR_AXIS_LABELS
        for rgb in images:
            result = segmenter.segment(mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb)))
            category = result.category_mask.numpy_view().reshape(SIZE)
            confidence = np.stack([m.numpy_view().reshape(SIZE) for m in result.confidence_masks], -1)
            out.append((category.copy(), confidence.copy()))
    return out


@pytest.mark.slow  # the shapes_alexnet training run, MediaPipe's segmenter
@pytest.mark.parametrize("quantize", list(TARGETS))
def test_mediapipe_image_segmenter_labels_equal_keras(shapes_alexnet, tmp_path, quantize):
    import keras

    model = shapes_alexnet.model
    path = str(tmp_path / "fcn.tflite")
    extra = {"representative_data": "shapes"} if quantize == "int8" else {}
    result = export(model, path, "tflite", quantize, target="mediapipe", input_size=SIZE,
                    class_names=list(SHAPES_CLASSES), verify=FAST, **extra)
    assert result.format == "mediapipe" and result.report.passed
    images = photos()
    logits = [keras.ops.convert_to_numpy(model(np.asarray(x, np.float32)[None], training=False))[0] for x in images]
    for (category, confidence), ref, name in zip(mediapipe_segment(path, images), logits, PHOTOS):
        expected = ref.argmax(-1)
        assert len(np.unique(expected)) > 1, name
        assert np.mean(category == expected) >= TARGETS[quantize], (name, np.mean(category == expected))
        assert np.array_equal(confidence.argmax(-1), category)  # the confidence masks: a softmax of the scores
        if quantize == "float32":
            softmax = np.exp(ref - ref.max(-1, keepdims=True))
            np.testing.assert_allclose(confidence, softmax / softmax.sum(-1, keepdims=True), atol=1e-3)


def test_standard_metadata_read_back_with_the_schema(vgg8s, tmp_path):
    path = str(tmp_path / "m.tflite")
    export(vgg8s, path, "tflite", target="mediapipe", input_size=(64, 80), class_names=["a", "b", "c", "d"],
           verify=False)
    schema, _ = tflite_mediapipe._schemas()
    found = tflite_mediapipe.read_standard_metadata(path)
    md = found["metadata"]
    assert md.name and md.description and md.version and md.author and md.license
    (subgraph,) = md.subgraphMetadata
    (image,), (masks,) = subgraph.inputTensorMetadata, subgraph.outputTensorMetadata
    assert image.content.contentProperties.colorSpace == schema.ColorSpaceType.RGB
    (norm,) = image.processUnits
    assert (list(norm.options.mean), list(norm.options.std)) == ([0.0], [1.0])
    (labels,) = masks.associatedFiles
    assert labels.type == schema.AssociatedFileType.TENSOR_AXIS_LABELS
    assert found["files"][labels.name.decode()] == "a\nb\nc\nd\n"
    assert [c.name for c in subgraph.customMetadata] == [b"SEGMENTER_METADATA"]
    # one float32 input (1, 64, 80, 3), one float32 scores output (1, 64, 80, 4)
    from fcn_keras.export.tflite import interpreter

    interp = interpreter(path)
    (inp,), (out,) = interp.get_input_details(), interp.get_output_details()
    assert list(inp["shape"]) == [1, 64, 80, 3] and inp["dtype"] == np.float32
    assert list(out["shape"]) == [1, 64, 80, 4] and out["dtype"] == np.float32
    assert detect_format(path) == "mediapipe" and read_metadata(path)["class_names"] == ["a", "b", "c", "d"]


def test_target_needs_an_input_size_and_a_tflite_format(vgg8s, tmp_path):
    with pytest.raises(ExportError, match="input_size"):
        export(vgg8s, str(tmp_path / "m.tflite"), "tflite", target="mediapipe", verify=False)
    with pytest.raises(ExportError, match="target"):
        export(vgg8s, str(tmp_path / "m.onnx"), "onnx", target="mediapipe")
    assert os.listdir(tmp_path) == []
