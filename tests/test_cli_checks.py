"""Arguments checked before any work, unwritable outputs in one line (exit 2), `predict` and
its own output folder, a closed pipe, and an interrupted demo that resumes as it says."""

import os
import signal
import subprocess
import sys
import time

import pytest

import fcn_keras
from fcn_keras.cli import main
from tests.conftest import PROGRAM, ROOT, ctrl_c_as_at_a_terminal

UNWRITABLE = "/proc/fcn_keras_out"  # read-only even for root


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """A 4-class .keras model (the shapes set's classes) and a photo."""
    import numpy as np
    from PIL import Image

    folder = tmp_path_factory.mktemp("small")
    fcn_keras.build("alexnet", "32s", num_classes=4, width=0.0625).save(folder / "m.keras")
    Image.fromarray(np.full((24, 32, 3), 90, np.uint8)).save(folder / "photo.png")
    return folder


def _error(capsys, command):
    out, err = capsys.readouterr()
    assert err.startswith(f"fcn-keras {command}: error: ") and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1, err
    return out, err


@pytest.mark.parametrize("command, argv, says", [
    ("train", ["--lr", "-1"], "`--lr` must be a positive learning rate"),
    ("train", ["--lr", "nan"], "`--lr` must be a positive learning rate"),
    ("train", ["--num-classes", "7"], "`--num-classes` does not apply to --data shapes"),
    ("train", ["--epochs", "0"], "`--epochs` must be N or one positive count per stage"),
    ("train", ["--batch-size", "0"], "`--batch-size` must be a positive count"),
    ("demo", ["--epochs", "0"], "`--epochs` must be at least 1"),
])
def test_bad_numbers_are_refused_before_any_work(tmp_path, capsys, command, argv, says):
    out_dir = tmp_path / "out"
    assert main([command, *argv, "--out", str(out_dir)]) == 2
    out, err = _error(capsys, command)
    assert says in err and out == "", (out, err)  # no "training from scratch", no "[1/4]"
    assert not out_dir.exists()


def test_alpha_and_num_classes_of_shapes(small, tmp_path, capsys):
    assert main(["predict", str(small / "photo.png"), "--model", "nowhere.keras", "--alpha", "2",
                 "--out", str(tmp_path / "o")]) == 2
    assert "`--alpha` is the overlay's opacity, 0..1" in _error(capsys, "predict")[1]
    assert main(["evaluate", "--model", str(small / "m.keras"), "--data", "shapes", "--num-examples", "1",
                 "--num-classes", "7"]) == 2
    assert "does not apply to --data shapes: it has 4 classes" in _error(capsys, "evaluate")[1]


@pytest.mark.parametrize("command, argv, says", [
    ("demo", ["--out", UNWRITABLE], "--out '/proc/fcn_keras_out'"),
    ("train", ["--out", UNWRITABLE], "--out '/proc/fcn_keras_out'"),
    ("export", ["{model}", "-o", UNWRITABLE + "/m.onnx"], "-o's folder"),
    ("evaluate", ["--model", "{model}", "--data", "shapes", "--num-examples", "1", "--json",
                  UNWRITABLE + "/s.json"], "--json's folder"),
])
def test_unwritable_output_is_one_line_and_exit_2(small, capsys, command, argv, says):
    argv = [a.replace("{model}", str(small / "m.keras")) for a in argv]
    assert main([command, *argv]) == 2
    out, err = _error(capsys, command)
    assert says in err and "not writable" in err and "[Errno" not in err, err
    assert "pixel accuracy" not in out  # evaluate checked before evaluating


def test_savedmodel_folder_named_like_a_file_is_refused(small, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["export", str(small / "m.keras"), "-o", "m.pdf"]) == 2
    err = _error(capsys, "export")[1]
    assert "a SavedModel is a folder" in err and "m.pdf" in err
    assert not (tmp_path / "m.pdf").exists()


def test_convert_names_its_source_argument(tmp_path, capsys):
    assert main(["convert", str(tmp_path / "nothere.caffemodel"), "--backbone", "vgg16", "--head", "8s",
                 "-o", str(tmp_path / "m.keras")]) == 2
    err = _error(capsys, "convert")[1]
    assert "`source`" in err and "`weights`" not in err, err


def test_export_offline_hint_names_no_flag_it_lacks(tmp_path, capsys, monkeypatch):
    import socket

    from fcn_keras.weights import zoo

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    name = zoo.ENTRIES["voc-fcn32s"]["source"]["filename"]
    monkeypatch.setitem(zoo.ENTRIES["voc-fcn32s"]["source"], "urls", (f"http://127.0.0.1:{port}/{name}",))
    assert main(["export", "voc-fcn32s", "-o", str(tmp_path / "m.onnx")]) == 1
    err = capsys.readouterr().err
    assert "--weights" not in err and "fcn-keras convert PATH -o model.keras" in err, err


def test_zoo_json_into_a_closed_pipe_says_nothing():
    env = dict(os.environ, PYTHONPATH=ROOT)
    command = [PROGRAM] if os.path.exists(PROGRAM) else [sys.executable, "-m", "fcn_keras.cli"]
    proc = subprocess.Popen([*command, "zoo", "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env)
    proc.stdout.close()  # the reader is gone before the program writes (as `| head` after its lines)
    err = proc.stderr.read().decode()
    proc.wait(timeout=120)
    assert "Broken pipe" not in err and "BrokenPipe" not in err and "Traceback" not in err, err


def test_predict_never_reads_its_output_tree_or_its_own_outputs(small, tmp_path, capsys):
    import shutil

    coll = tmp_path / "coll"
    (coll / "a").mkdir(parents=True)
    (coll / "b").mkdir()
    for where in ("x.png", "a/x.png", "b/x.png"):
        shutil.copy(small / "photo.png", coll / where)
    model = str(small / "m.keras")
    # the output folder inside the input: left out, and said so
    assert main(["predict", str(coll), "--model", model, "--out", str(coll / "a")]) == 0
    out, err = capsys.readouterr()
    assert "2 of 2 images" in out and f"the output folder {coll / 'a'} is inside the input" in err
    # the input inside (here: equal to) the output folder: refused, nothing written
    assert main(["predict", str(coll / "b"), "--model", model, "--out", str(coll / "b"), "--overwrite"]) == 2
    assert "is inside the output folder" in _error(capsys, "predict")[1]
    assert sorted(os.listdir(coll / "b")) == ["x.png"]
    # a folder holding this program's outputs: they are not inputs
    assert main(["predict", str(coll / "a"), "--model", model, "--out", str(tmp_path / "o")]) == 0
    out, err = capsys.readouterr()
    assert "1 of 1 images" in out and "this program's own outputs" in err
    assert not [n for _, _, names in os.walk(tmp_path / "o") for n in names if "_labels.png_" in n]


@pytest.mark.slow  # two demo runs, one stopped with Ctrl-C
def test_interrupted_demo_resumes_with_the_same_command(tmp_path):
    """Ctrl-C during the demo's training advises running the same command again: it resumes."""
    env = dict(os.environ, PYTHONPATH=ROOT, KERAS_HOME=str(tmp_path / "keras_home"))
    command = [sys.executable, "-m", "fcn_keras.cli", "demo", "--out", str(tmp_path / "d"), "--epochs", "2"]
    log = tmp_path / "d" / "train" / "log.csv"  # written when training begins

    def start():
        return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=env, cwd=tmp_path, preexec_fn=ctrl_c_as_at_a_terminal)

    first = start()
    while not log.exists() and first.poll() is None:
        time.sleep(0.05)
    first.send_signal(signal.SIGINT)
    _, err = first.communicate(timeout=300)
    assert first.returncode == 130, err
    assert "run the same command again to resume" in err, err
    again = start()
    try:
        lines = []
        for line in again.stdout:  # up to the line saying where it resumes
            lines.append(line)
            if line.startswith(("resuming from epoch", "epoch ")):
                break
        assert any(line.startswith("resuming the interrupted demo") for line in lines), lines
        assert any(line.startswith("resuming from epoch 1") for line in lines), lines
    finally:
        again.kill()
        again.communicate()
