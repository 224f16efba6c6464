"""The `fcn-keras` command line as a user runs it: the documented commands (real
subprocesses), and one convention for every expected failure (one line on stderr, exit 2 for
usage and input errors, 1 for runtime failures, `--debug` for the traceback)."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import fcn_keras
from fcn_keras.cli import main
from tests.data.conftest import make_voc_tree, write_palette_png

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROGRAM = os.path.join(os.path.dirname(sys.executable), "fcn-keras")
NOISE = ("\x1b[", "\r", "oneDNN", "absl", "cpu_feature_guard", "Traceback", "Warning:")


def fcn_keras_cli(*args, cwd=None, timeout=900):
    """Runs the installed `fcn-keras` program on this checkout, as a user would (no
    TF_CPP_MIN_LOG_LEVEL of our own: the program keeps TensorFlow's lines out itself)."""
    env = dict(os.environ, PYTHONPATH=ROOT)
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    command = [PROGRAM] if os.path.exists(PROGRAM) else [sys.executable, "-m", "fcn_keras.cli"]
    return subprocess.run([*command, *args], capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=timeout)


def _one_error_line(capsys, command):
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"fcn-keras {command}: error: "), lines
    return lines[0]


def test_help_lists_every_command():
    result = fcn_keras_cli("--help")
    assert result.returncode == 0, result.stderr
    for command in ("demo", "train", "evaluate", "predict", "export", "convert", "zoo"):
        assert command in result.stdout
    assert "130 interrupted" in " ".join(result.stdout.split())


def test_unknown_command_fails():
    result = fcn_keras_cli("segment-everything")
    assert result.returncode == 2
    assert "invalid choice" in result.stderr


def test_input_errors_exit_2_with_one_line_and_debug_shows_the_traceback(tmp_path, capsys):
    missing = str(tmp_path / "VOCmissing")
    assert main(["train", "--data", missing, "--out", str(tmp_path / "o")]) == 2
    assert missing in _one_error_line(capsys, "train")
    assert main(["evaluate", "--model", str(tmp_path / "nope.keras")]) == 2
    assert "nope.keras" in _one_error_line(capsys, "evaluate")
    assert main(["train", "--epochs", "2,x", "--out", str(tmp_path / "o")]) == 2
    assert "--epochs" in _one_error_line(capsys, "train")
    weights = str(tmp_path / "a.weights.h5")
    fcn_keras.build("alexnet", "32s", num_classes=4, width=0.0625).save_weights(weights)
    assert main(["evaluate", "--model", weights, "--data", "shapes"]) == 2
    assert "--backbone and --head" in _one_error_line(capsys, "evaluate")
    assert main(["evaluate", "--model", weights, "--backbone", "vgg16", "--head", "8s",
                 "--width", "0.0625", "--data", "shapes"]) == 2
    assert "does not fit FCN-8s vgg16" in _one_error_line(capsys, "evaluate")
    with pytest.raises(FileNotFoundError, match="nope.keras"):
        main(["--debug", "evaluate", "--model", str(tmp_path / "nope.keras")])
    with pytest.raises(SystemExit) as usage:  # argparse: --out is required
        main(["train"])
    assert usage.value.code == 2


def test_offline_zoo_weights_exit_1_naming_url_file_and_cache(tmp_path, capsys, monkeypatch):
    import socket

    from fcn_keras.weights import zoo

    home = tmp_path / "keras_home"
    monkeypatch.setenv("KERAS_HOME", str(home))
    with socket.socket() as s:  # a port nothing listens on: the download is refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/fcn8s-heavy-pascal.caffemodel"
    monkeypatch.setitem(zoo.ENTRIES["voc-fcn8s"]["source"], "urls", (url,))
    root = str(tmp_path / "VOC2012")
    make_voc_tree(root, {"val": ["2008_000001"]})
    rc = main(["evaluate", "--weights", "voc-fcn8s", "--backbone", "vgg16", "--head", "8s",
               "--data", f"voc:{root}"])
    assert rc == 1
    line = _one_error_line(capsys, "evaluate")
    assert url in line and str(home / "models" / "fcn8s-heavy-pascal.caffemodel") in line


def test_bad_mask_exit_2_naming_the_file(tmp_path, capsys):
    root = str(tmp_path / "VOC2012")
    make_voc_tree(root, {"val": ["2008_000001", "2008_000002"]}, sizes={"2008_000002": (20, 30)})
    bad = np.zeros((20, 30), np.uint8)
    bad[5, 5] = 37  # not a class of 21, not 255
    bad_path = os.path.join(root, "SegmentationClass", "2008_000002.png")
    write_palette_png(bad, bad_path)
    model_path = str(tmp_path / "m.keras")
    fcn_keras.build("alexnet", "32s", num_classes=21, width=0.0625).save(model_path)
    rc = main(["evaluate", "--model", model_path, "--data", f"voc:{root}", "--quiet"])
    assert rc == 2
    assert "2008_000002" in _one_error_line(capsys, "evaluate")


def test_readme_train_and_evaluate_commands(tmp_path):
    """The README's commands, word for word plus a small width, on a tiny VOC folder."""
    make_voc_tree(str(tmp_path / "VOCdevkit" / "VOC2012"),
                  {"train": ["2008_000001", "2008_000002"], "val": ["2008_000003"]})
    train = fcn_keras_cli("train", "--backbone", "vgg16", "--head", "8s", "--data",
                          "VOCdevkit/VOC2012", "--schedule", "staged", "--out", "runs/voc",
                          "--width", "0.0625", "--epochs", "1", cwd=tmp_path)
    assert train.returncode == 0, train.stdout[-2000:] + train.stderr[-3000:]
    for noise in NOISE:
        assert noise not in train.stdout + train.stderr, noise
    lines = train.stdout.splitlines()
    assert [line for line in lines if line.startswith("stage ")] == [
        "stage 1/3: FCN-32s from scratch", "stage 2/3: FCN-16s from FCN-32s",
        "stage 3/3: FCN-8s from FCN-16s"]
    epochs = [line for line in lines if line.startswith("epoch ")]
    assert len(epochs) == 3 and all(len(line) < 120 for line in epochs), epochs
    assert lines[0].startswith("training from scratch (no --weights): Adam")
    for name in ("model.keras", "curves.png", "history.json", "scores.json",
                 "fcn32s/model.keras", "fcn8s/model.keras"):
        assert (tmp_path / "runs" / "voc" / name).exists(), name
    model = keras.saving.load_model(tmp_path / "runs" / "voc" / "model.keras", compile=False)
    assert (model.head_name, model.num_classes) == ("8s", 21)

    evaluate = fcn_keras_cli("evaluate", "--model", "runs/voc/model.keras", "--data",
                             "VOCdevkit/VOC2012", "--split", "val", "--json", "scores.json",
                             cwd=tmp_path)
    assert evaluate.returncode == 0, evaluate.stderr[-3000:]
    assert "mean IU" in evaluate.stdout
    with open(tmp_path / "scores.json") as f:
        assert json.load(f)["images"] == 1


def test_demo_runs_end_to_end(tmp_path):
    out = tmp_path / "demo"
    result = fcn_keras_cli("demo", "--quick", "--out", str(out))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for name in ("metrics.json", "train/model.keras", "train/curves.png", "export/fcn8s.tflite",
                 "export/fcn8s.onnx", "export/fcn8s_int8.tflite",
                 "export/fcn8s_savedmodel/saved_model.pb", "predictions/0_overlay.png"):
        assert (out / name).exists(), name
    assert "mean IU" in result.stdout
    tail = result.stdout.strip().splitlines()[-7:]
    assert any(str(out / "train" / "curves.png") in line for line in tail), tail
    assert tail[-1] == (f"next: fcn-keras predict --model {out / 'train' / 'model.keras'} "
                        f"your_photo.jpg --out masks/")
    # A second run never clobbers the first without --overwrite.
    again = fcn_keras_cli("demo", "--quick", "--out", str(out))
    assert again.returncode == 2 and "--overwrite" in again.stderr
