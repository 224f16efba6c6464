"""What a new user hits on the command line: damaged model files, a bad --out, offline
downloads (one exit code, a few short lines), help texts, choices and wording."""

import argparse
import os

import pytest

import fcn_keras
from fcn_keras.cli import main
from fcn_keras.models import registry


@pytest.fixture(scope="module")
def damaged(tmp_path_factory):
    """A truncated .keras file, an empty one, and a photo."""
    import numpy as np
    from PIL import Image

    folder = tmp_path_factory.mktemp("damaged")
    good = folder / "good.keras"
    fcn_keras.build("alexnet", "32s", num_classes=4, width=0.0625).save(good)
    data = good.read_bytes()
    (folder / "truncated.keras").write_bytes(data[: len(data) * 2 // 3])
    (folder / "empty.keras").write_bytes(b"")
    Image.fromarray(np.full((24, 32, 3), 90, np.uint8)).save(folder / "photo.png")
    return folder


def _stderr(capsys, command):
    err = capsys.readouterr().err
    assert err.startswith(f"fcn-keras {command}: error: ") and "Traceback" not in err, err
    return err


@pytest.mark.parametrize("name, says", [("truncated.keras", "not a complete .keras archive"),
                                        ("empty.keras", "is empty")])
def test_damaged_keras_file_is_named_as_such_by_every_command(damaged, tmp_path, capsys, name, says):
    path = str(damaged / name)
    for command, argv in (("evaluate", ["--model", path, "--data", "shapes", "--num-examples", "1"]),
                          ("predict", [str(damaged / "photo.png"), "--model", path, "--out", str(tmp_path / "o")]),
                          ("export", [path, "-o", str(tmp_path / "m.onnx")])):
        assert main([command, *argv]) == 2
        err = _stderr(capsys, command)
        assert says in err and "not found" not in err.lower(), err
    assert not (tmp_path / "o").exists() and not (tmp_path / "m.onnx").exists()


def test_predict_out_is_checked_before_the_model_loads(damaged, tmp_path, capsys):
    """The model here is damaged: an --out error first means --out was checked first."""
    model, photo = str(damaged / "truncated.keras"), str(damaged / "photo.png")
    a_file = tmp_path / "taken"
    a_file.write_text("")
    for out, says in ((str(a_file), "is an existing file; expected a folder"),
                      (str(a_file / "below"), "is a file, so no folder can be made below it"),
                      ("/proc/fcn_keras_out", "is not writable")):  # read-only even for root
        assert main(["predict", photo, "--model", model, "--out", out]) == 2
        err = _stderr(capsys, "predict")
        assert says in err and ".keras" not in err, err


def test_offline_download_exits_1_in_every_command_with_a_few_short_lines(tmp_path, capsys, monkeypatch,
                                                                          damaged):
    import socket

    from fcn_keras.weights import zoo

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    with socket.socket() as s:  # a port nothing listens on: every download is refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    name = zoo.ENTRIES["voc-fcn32s"]["source"]["filename"]
    urls = (f"https://127.0.0.1:{port}/{name}", f"http://127.0.0.1:{port}/{name}")
    monkeypatch.setitem(zoo.ENTRIES["voc-fcn32s"]["source"], "urls", urls)
    photo = str(damaged / "photo.png")
    from tests.conftest import make_tiny_voc

    make_tiny_voc(str(tmp_path / "voc"), splits=(("val", 1),))
    for command, argv in (("convert", ["voc-fcn32s", "-o", str(tmp_path / "m.keras")]),
                          ("predict", [photo, "--model", "voc-fcn32s", "--out", str(tmp_path / "o")]),
                          ("predict", [photo, "--weights", "voc-fcn32s", "--out", str(tmp_path / "o")]),
                          ("evaluate", ["--weights", "voc-fcn32s", "--data", str(tmp_path / "voc")])):
        assert main([command, *argv]) == 1, command
        err = _stderr(capsys, command)
        lines = err.splitlines()
        assert 4 <= len(lines) <= 8 and all(err.count(u) == 1 for u in urls), err
        assert name in lines[0] and str(tmp_path / "keras_home" / "models" / name) in err
        # each command names a flag it has (convert: its `source` argument)
        flag = "the source argument" if command == "convert" else "--weights PATH"
        assert flag in err and "weights=" not in err, err


def test_every_option_has_help_and_states_its_default():
    parser = main.__globals__["make_parser"]()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    missing = []
    for command, p in sub.choices.items():
        for action in p._actions:
            if not action.option_strings or action.dest == "help":
                continue
            has_default = action.default not in (None, False) and not action.required
            if not action.help or (has_default and "default" not in action.help):
                missing.append((command, action.option_strings[-1]))
            if action.dest == "backbone":  # the registry's order everywhere
                assert list(action.choices) == list(registry.backbones()), (command, action.choices)
    assert missing == []


def test_errors_speak_python_in_python_and_flags_on_the_command_line(damaged, tmp_path, capsys):
    from fcn_keras.export import ExportError, export
    from fcn_keras.export.formats import normalize_quantize

    with pytest.raises(ExportError) as info:
        normalize_quantize("onnx", "dynamic-int8")
    assert "'float32'" in str(info.value) and "(None,)" not in str(info.value)
    taken = tmp_path / "m.onnx"
    taken.write_text("")
    with pytest.raises(ExportError, match="overwrite=True") as info:
        export(str(damaged / "good.keras"), str(taken), verify=False)
    assert "--overwrite" not in str(info.value)
    assert main(["export", str(damaged / "good.keras"), "-o", str(taken), "--no-verify"]) == 2
    err = _stderr(capsys, "export")
    assert "--overwrite" in err and "overwrite=True" not in err
    with pytest.raises(FileExistsError, match="overwrite=True"):  # the demo, from Python
        from fcn_keras.cli.demo import run

        run(str(damaged), verbose=False)
