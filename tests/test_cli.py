"""The `fcn-keras` command line as a user runs it: the demo (real subprocess), and one
convention for every expected failure (one line on stderr, exit 2 for usage and input errors,
1 for runtime failures, `--debug` for the traceback). README.md's other commands run, with
checks of what they print and write, in tests/test_readme.py."""

import os
import re

import numpy as np
import pytest

import fcn_keras
from fcn_keras.cli import main
from tests.conftest import fcn_keras_cli
from tests.data.conftest import make_voc_tree, write_palette_png


def _one_error_line(capsys, command):
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"fcn-keras {command}: error: "), lines
    return lines[0]


def test_help_lists_every_command():
    result = fcn_keras_cli("--help")
    assert result.returncode == 0, result.stderr
    for command in ("demo", "train", "evaluate", "predict", "export", "convert", "zoo", "data", "serve"):
        assert command in result.stdout
    assert "130 interrupted" in " ".join(result.stdout.split())


def test_parsing_imports_no_tensorflow_so_help_answers_at_once():
    """Every command's parser is built, and `--help` printed, before TensorFlow, Keras, JAX
    or PyTorch is imported: the program answers help and typos without loading them."""
    import subprocess
    import sys

    code = ("import sys\n"
            "from fcn_keras.cli import main\n"
            "for argv in (['--help'], ['train', '--help'], ['predict', '--help'], ['export', '--help'], ['serve', '--help']):\n"
            "    try:\n"
            "        main(argv)\n"
            "    except SystemExit:\n"
            "        pass\n"
            "print('HEAVY', sorted(m for m in ('tensorflow', 'keras', 'jax', 'torch') if m in sys.modules))")
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert "HEAVY []" in out.stdout, out.stdout[-500:]


def test_unknown_command_fails():
    result = fcn_keras_cli("segment-everything")
    assert result.returncode == 2
    assert "invalid choice" in result.stderr


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory):
    """A .weights.h5 of FCN-32s AlexNet (width 0.0625, 4 classes): weights without their architecture."""
    path = str(tmp_path_factory.mktemp("weights") / "a.weights.h5")
    fcn_keras.build("alexnet", "32s", num_classes=4, width=0.0625).save_weights(path)
    return path


# says: a regular expression the one error line holds
@pytest.mark.parametrize("argv, command, says", [
    (["train", "--data", "{tmp}/VOCmissing", "--out", "{tmp}/o"], "train", "{tmp}/VOCmissing"),
    (["evaluate", "--model", "{tmp}/nope.keras"], "evaluate", r"nope\.keras"),
    (["train", "--epochs", "2,x", "--out", "{tmp}/o"], "train", "--epochs"),
    (["evaluate", "--model", "{weights}", "--data", "shapes"], "evaluate",
     "holds weights only.*--backbone, --head"),
    (["evaluate", "--model", "{weights}", "--backbone", "vgg16", "--head", "8s", "--width", "0.0625",
      "--data", "shapes"], "evaluate", "does not fit FCN-8s vgg16"),
], ids=["missing-data", "missing-model", "bad-epochs", "weights-only", "weights-of-another-net"])
def test_input_error_exits_2_with_one_line(tmp_path, capsys, weights_file, argv, command, says):
    fill = dict(tmp=str(tmp_path), weights=weights_file)
    assert main([a.format(**fill) for a in argv]) == 2
    line = _one_error_line(capsys, command)
    assert re.search(says.format(tmp=re.escape(str(tmp_path))), line), line


def test_debug_shows_the_traceback(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.keras"):
        main(["--debug", "evaluate", "--model", str(tmp_path / "nope.keras")])


def test_a_missing_required_option_is_a_usage_error():
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
    err = capsys.readouterr().err  # a few short lines: the URL, the file, where it goes
    assert err.startswith("fcn-keras evaluate: error: Could not download fcn8s-heavy-pascal.caffemodel")
    assert url in err and str(home / "models" / "fcn8s-heavy-pascal.caffemodel") in err


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


@pytest.mark.slow  # a demo run
def test_demo_runs_end_to_end(demo_run, capsys, monkeypatch):
    """README.md's `fcn-keras demo --quick` (tests/conftest.py's `demo_run`: one run per
    session, which tests/test_readme.py checks too) writes everything it promises, prints the
    scores and ends with where things are and the next command."""
    folder, args, result = demo_run
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = folder / "demo_output"
    for name in ("metrics.json", "train/model.keras", "train/curves.png", "export/fcn8s.tflite",
                 "export/fcn8s.onnx", "export/fcn8s_int8.tflite",
                 "export/fcn8s_savedmodel/saved_model.pb", "predictions/0_overlay.png",
                 "web/index.html", "web/fcn.js", "web/model.onnx", "web/model.onnx.verify.json"):
        assert (out / name).exists(), name
    assert "mean IU" in result.stdout
    tail = result.stdout.strip().splitlines()[-9:]
    assert any(os.path.join("demo_output", "train", "curves.png") in line for line in tail), tail
    model_path = os.path.join("demo_output", "train", "model.keras")
    assert tail[-2] == f"next: fcn-keras predict --model {model_path} your_photo.jpg --out masks/"
    # the web page: CI fetches ONNX Runtime Web (npm ci --prefix web), so the demo writes it
    web = os.path.join("demo_output", "web")
    assert tail[-1].startswith(f"  or: fcn-keras serve {web} "), tail
    # TFLite's native INFO lines stay off the terminal
    assert "XNNPACK" not in result.stderr and "fully_quantize" not in result.stderr, result.stderr[-2000:]
    # A second run never clobbers the first without --overwrite.
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    monkeypatch.chdir(folder)
    assert main(list(args)) == 2
    assert "--overwrite" in _one_error_line(capsys, "demo")
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before


@pytest.mark.slow  # a demo run
def test_demo_prints_the_evaluate_command_that_reproduces_its_mean_iu(demo_run, tmp_path):
    """The demo's "same score" line, run as printed, gives the demo's mean IU; its model.keras
    carries the shapes class names (the evaluate table and predict --legend use them)."""
    import json
    import shlex

    from fcn_keras.data import SHAPES_CLASSES
    from fcn_keras.predict import Predictor

    folder, _, result = demo_run
    line = next(t for t in result.stdout.splitlines() if t.strip().startswith("same score"))
    command = shlex.split(line.split("same score", 1)[1])
    assert command[:2] == ["fcn-keras", "evaluate"]
    js = str(tmp_path / "reproduced.json")  # not in the shared demo folder, which test_readme checks
    run = fcn_keras_cli(*command[1:], "--json", js, "--quiet", cwd=folder)
    assert run.returncode == 0, run.stderr[-2000:]
    with open(folder / "demo_output" / "metrics.json") as f:
        demo = json.load(f)
    with open(js) as f:
        again = json.load(f)
    assert again["images"] == demo["images"] and again["pixels"] == demo["pixels"]
    assert abs(again["mean_iou"] - demo["mean_iou"]) < 1e-4, (again["mean_iou"], demo["mean_iou"])
    assert f"{demo['mean_iou']:.3f}" in result.stdout
    assert Predictor(str(folder / "demo_output" / "train" / "model.keras")).class_names == list(SHAPES_CLASSES)
