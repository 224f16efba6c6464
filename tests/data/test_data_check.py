"""`fcn-keras data check`, then `train` and `evaluate` on a CamVid-like folder pair: RGB colour
masks with a class_dict.csv, a rare class (under 2% of pixels), nested sub-folders, a mask
suffix, and a few unpaired and broken files - as a user runs them (real subprocesses)."""

import re

import numpy as np
import pytest
from PIL import Image

from fcn_keras.cli import main

from ..conftest import fcn_keras_cli
from .conftest import make_folder_pair, write_class_dict

NAMES = [f"seq{i % 3}/f{i:03d}" for i in range(24)]


@pytest.fixture
def camvid_like(tmp_path):
    make_folder_pair(tmp_path, NAMES, suffix="_L")
    csv = write_class_dict(tmp_path / "class_dict.csv")
    (tmp_path / "images" / "seq0" / "f000.jpg").write_bytes(b"truncated")      # broken image
    Image.fromarray(np.zeros((10, 10, 3), np.uint8)).save(tmp_path / "images" / "seq1" / "f001.jpg")  # wrong size
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "images" / "lonely.png")  # no mask
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "masks" / "orphan_L.png")  # no image
    spec = f"folders:{tmp_path / 'images'},{tmp_path / 'masks'}"
    return tmp_path, spec, csv


def test_data_check_reports_shares_weights_unpaired_and_problems(camvid_like):
    root, spec, csv = camvid_like
    plot = root / "hist.png"
    proc = fcn_keras_cli("data", "check", spec, "--colors", csv, "--val-fraction", "0.3",
                         "--plot", str(plot), "--quiet", timeout=600)
    assert proc.returncode == 2, proc.stderr
    out = proc.stdout
    counts = {m[0]: int(m[1]) for m in re.findall(r"folders:(train|val): (\d+) examples", out)}
    assert sum(counts.values()) == 22 and counts["val"] > 0  # 24 pairs, 2 broken
    assert "sizes (HxW) min 24x32, median 24x32, max 24x32" in out
    sign = re.search(r"^  sign\s+([\d.]+)%\s+([\d.]+)%\s+([\d.]+)", out, re.M)
    assert sign and 0 < float(sign[1]) < 2 and float(sign[3]) > 50  # rare: a large weight
    assert re.search(r"1 image without a mask \(.*lonely\.png\); 1 mask without an image \(.*orphan_L\.png\)", out)
    assert "2 problem(s):" in out
    assert re.search(r"seq0/f000\.jpg: not an image file", out)
    assert re.search(r"seq1/f001_L\.png: the mask must be the size of its image", out)
    assert proc.stderr.strip().splitlines()[-1].startswith(
        "fcn-keras data check: error: 2 of 24 examples have problems")
    with Image.open(plot) as im:
        pixels = np.asarray(im.convert("RGB"))
    assert pixels.shape[0] > 100 and len(np.unique(pixels.reshape(-1, 3), axis=0)) > 10


@pytest.mark.slow  # train and evaluate through the command line in subprocesses (23 s CPU)
def test_train_and_evaluate_on_the_folder_pair(camvid_like, tmp_path):
    root, spec, csv = camvid_like
    out = root / "run"
    common = ("--data", spec, "--colors", csv, "--val-fraction", "0.3", "--skip-invalid")
    proc = fcn_keras_cli("train", *common, "--backbone", "alexnet", "--width", "0.0625",
                         "--head", "32s", "--epochs", "1", "--steps-per-epoch", "2",
                         "--loss", "focal", "--class-weights", "median_frequency",
                         "--val-split", "none", "--seed", "0", "--quiet", "--out", str(out),
                         timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert re.search(r"class weights \(median_frequency\): sky [\d.]+, road [\d.]+, car [\d.]+, "
                     r"sign [\d.]+", proc.stdout)
    import keras

    model = keras.saving.load_model(out / "model.keras", compile=False)
    assert model.class_names == ["sky", "road", "car", "sign"]  # from class_dict.csv
    assert model.palette == [[128, 128, 128], [128, 64, 128], [64, 0, 128], [192, 128, 128]]
    proc = fcn_keras_cli("evaluate", *common, "--model", str(out / "model.keras"), "--quiet",
                         timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "mean IU" in proc.stdout or "mean_iu" in proc.stdout.lower()
    for name in ("sky", "road", "car", "sign"):
        assert name in proc.stdout


def test_data_check_on_a_voc_tree_reads_train_and_val(voc_tree, capsys):
    root, truth = voc_tree
    assert main(["data", "check", root, "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "voc:train: 3 examples" in out and "voc:val: 2 examples" in out
    assert re.search(r"^  aeroplane\s+[\d.]+%\s+[\d.]+%", out, re.M)


def test_data_check_on_the_synthetic_set_finds_no_problem():
    proc = fcn_keras_cli("data", "check", "shapes", "--split", "val", "--num-examples", "3",
                         "--quiet", timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "shapes:val: 3 examples" in proc.stdout and "no problems found" in proc.stdout
    assert re.search(r"^  background\s+[\d.]+%", proc.stdout, re.M)


@pytest.mark.parametrize("argv, words", [
    (["data", "check", "shapes", "--colors", "c.csv"], "`--colors` applies to `--data folders:IMAGES,MASKS` only"),
    (["data", "check", "folders:only_one"], "folders:IMAGES,MASKS"),
    (["data", "check", "shapes", "--plot", "x.jpg"], "`--plot` must name a .png file"),
])
def test_data_check_argument_errors_are_one_line_exit_2(argv, words, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("fcn-keras data check: error: ") and words in err[0]


def test_folder_flags_reach_from_folders(tmp_path, capsys):
    make_folder_pair(tmp_path, ["a", "b"], suffix="_L")
    csv = write_class_dict(tmp_path / "c.csv")
    spec = f"folders:{tmp_path / 'images'},{tmp_path / 'masks'}"
    assert main(["data", "check", spec, "--colors", csv, "--mask-suffix", "_gt", "--quiet"]) == 2
    assert "must hold image / mask pairs" in capsys.readouterr().err
    assert main(["data", "check", spec, "--colors", csv, "--val-fraction", "1.5", "--quiet"]) == 2
    assert "`val_fraction` must be within [0, 1)" in capsys.readouterr().err
    assert main(["data", "check", spec, "--colors", csv, "--mask-suffix", "_L", "--split", "all",
                 "--quiet"]) == 0
    assert "folders:all: 2 examples" in capsys.readouterr().out


def test_data_check_reads_each_split_folder_and_names_stray_files(tmp_path, capsys):
    make_folder_pair(tmp_path, ["train/a", "train/b", "val/c", "test/d", "stray"])
    csv = write_class_dict(tmp_path / "c.csv")
    spec = f"folders:{tmp_path / 'images'},{tmp_path / 'masks'}"
    assert main(["data", "check", spec, "--colors", csv, "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "folders:test: 1 examples" in out and "folders:train: 2 examples" in out
    assert "folders:val: 1 examples" in out
    assert re.search(r"2 file\(s\) outside the split folders are not used: .*stray\.jpg", out)
