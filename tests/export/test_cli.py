"""`fcn-keras export` through the command line's entry point (fcn_keras.cli.main)."""

import json
import os

from fcn_keras.cli import main


def test_cli_export_verify_and_refuse_overwrite(vgg8s_keras_file, tmp_path, capsys):
    out = str(tmp_path / "m.onnx")
    assert main(["export", vgg8s_keras_file, "--format", "onnx", "-o", out]) == 0
    text = capsys.readouterr().out
    assert "m.onnx" in text and "latency" in text and "yes" in text
    with open(out + ".verify.json") as f:
        assert json.load(f)["passed"] is True
    # an existing path is refused with a clear message, the file is untouched
    mtime = os.path.getmtime(out)
    assert main(["export", vgg8s_keras_file, "--format", "onnx", "-o", out]) == 2
    err = capsys.readouterr().err
    assert "exists; pass --overwrite" in err and "overwrite=True" not in err
    assert os.path.getmtime(out) == mtime
    # verify an existing export and print the table
    assert main(["export", vgg8s_keras_file, "--verify", out]) == 0
    assert "83x117" in capsys.readouterr().out


def test_cli_bad_arguments(vgg8s_keras_file, tmp_path, capsys):
    out = str(tmp_path / "m.tflite")
    assert main(["export", vgg8s_keras_file, "-o", out, "--quantize", "int8"]) == 2
    assert "representative" in capsys.readouterr().err
    assert main(["export", vgg8s_keras_file, "-o", out, "--quantize", "int8",
                 "--representative-data", str(tmp_path / "no_such_folder")]) == 2
    assert "--representative-data" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "missing.keras"), "-o", out]) == 2
    assert "missing.keras' does not exist" in capsys.readouterr().err
    assert os.listdir(tmp_path) == []
