"""The zoo data, its generated docs, the SIFT Flow mapping, and the `convert` / `zoo` commands."""

import importlib.util
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import fcn_keras
from fcn_keras.models import registry
from fcn_keras.weights import zoo
from fcn_keras.weights.download import parse_hash
from tests.reference import caffe_nets

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOL = os.path.join(ROOT, "tools", "zoo_docs.py")


def _load_tool():
    spec = importlib.util.spec_from_file_location("zoo_docs", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


zoo_docs = _load_tool()


@pytest.mark.parametrize("name", sorted(zoo.ENTRIES))
def test_entry_is_complete(name):
    entry = zoo.get(name)
    assert entry["name"] == name
    registry.check(entry["backbone"], entry["head"])
    if entry["kind"] == "fcn":
        assert len(entry["classes"]) == entry["num_classes"] == len(set(entry["classes"]))
    src = entry["source"]
    assert src["urls"] and src["urls"][0].startswith("https://")
    assert all(u.rstrip("/").endswith(src["filename"]) for u in src["urls"])
    if src["checksum"] is None:
        assert "No checksum is published" in entry["notes"]
    else:
        assert parse_hash(src["checksum"])[0] in ("md5", "sha1", "sha256") and src["checksum_source"]
    assert entry["preprocessing"]["bgr_mean"] == caffe_nets.BGR_MEAN
    # The stated parameter count is the built architecture's (full width, weights not allocated).
    assert entry["num_params"] == zoo_docs.entry_params(entry)


def test_reported_metrics_and_list_models():
    models = {m["name"]: m for m in fcn_keras.list_models()}
    assert models["voc-fcn8s"]["metrics"]["seg11valid"]["mean_iu"] == 65.5
    assert models["voc-fcn8s"]["metrics"]["seg12test"]["mean_iu"] == 67.2
    assert models["voc-fcn32s"]["metrics"]["seg11valid"]["mean_iu"] == 63.6
    assert models["voc-fcn-alexnet"]["metrics"]["seg11valid"]["mean_iu"] == 48.0
    assert models["pascalcontext-fcn8s"]["num_classes"] == 60
    assert models["nyud-fcn32s-color"]["num_classes"] == 40
    assert models["siftflow-fcn8s"]["num_classes"] == 33
    models["voc-fcn8s"]["classes"] = ()  # a copy: the zoo itself is unchanged
    assert zoo.get("voc-fcn8s")["classes"][15] == "person"


def _head_params(backbone, head, num_classes):
    """Decoder parameters by arithmetic: score convs (C_in * n + n) and bias-free n x n deconvs."""
    taps = {"vgg16": {"fc7": 4096, "pool4": 512, "pool3": 256}, "alexnet": {"fc7": 4096}}[backbone]
    n = num_classes
    score = lambda c: c * n + n  # noqa: E731
    deconv = lambda k: k * k * n * n  # noqa: E731
    if head == "32s":
        return score(taps["fc7"]) + deconv(64 if backbone == "vgg16" else 63)
    if head == "16s":
        return score(taps["fc7"]) + score(taps["pool4"]) + deconv(4) + deconv(32)
    return score(taps["fc7"]) + score(taps["pool4"]) + score(taps["pool3"]) + 2 * deconv(4) + deconv(16)


def test_parameter_counts():
    """Each FCN entry's count is its ImageNet backbone's count plus the arithmetic of its
    decoder; the backbones' counts are the built backbones' (counted without allocating and,
    for the cheap ones, by building them for real)."""
    backbones = {e["backbone"]: e["num_params"] for e in zoo.IMAGENET.values()}
    for entry in zoo.ENTRIES.values():
        if entry["kind"] == "fcn":
            head = _head_params(entry["backbone"], entry["head"], entry["num_classes"])
            assert entry["num_params"] == backbones[entry["backbone"]] + head, entry["name"]
    for backbone in ("alexnet", "googlenet"):
        assert fcn_keras.build_backbone(backbone).count_params() == backbones[backbone]


@pytest.mark.parametrize("backbone,head", registry.architectures())
def test_counting_without_weights_equals_the_built_model(backbone, head):
    model = fcn_keras.build(backbone, head, num_classes=5, width=0.25)
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    fixed = sum(int(np.prod(w.shape)) for w in model.non_trainable_weights)
    assert zoo_docs.count_params(backbone, head, 5, width=0.25) == (trainable, fixed)
    assert fixed > 0 and all(w.path.split("/")[0].startswith("upscore") for w in model.non_trainable_weights)


def test_generated_docs_are_current():
    """zoo/ and docs/models.md's parameter table are what tools/zoo_docs.py renders."""
    assert zoo_docs.stale_files() == [], "stale generated docs: run python tools/zoo_docs.py"
    entries = {d for d in os.listdir(os.path.join(ROOT, "zoo")) if os.path.isdir(os.path.join(ROOT, "zoo", d))}
    assert entries == set(zoo.ENTRIES)
    with open(os.path.join(ROOT, "docs", "models.md"), encoding="utf-8") as f:
        readme = f.read()
    assert "| vgg16 | 8s, 8s-atonce | 134,489,759 | 134,362,751 | 127,008 |" in readme


@pytest.mark.slow  # the docs tool in two subprocesses, every architecture counted (12 s CPU)
def test_tool_reports_and_rewrites_a_stale_table(tmp_path):
    """The script run as a user runs it: --check fails on a stale copy, a plain run repairs it."""
    with open(os.path.join(ROOT, "docs", "models.md"), encoding="utf-8") as f:
        readme = f.read()
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "models.md").write_text(readme.replace("| 134,489,759 |", "| 1 |"), encoding="utf-8")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    check = subprocess.run([sys.executable, TOOL, "--root", str(tmp_path), "--check"],
                           capture_output=True, text=True, env=env)
    assert check.returncode == 1 and f"stale: {os.path.join('docs', 'models.md')}" in check.stdout
    assert subprocess.run([sys.executable, TOOL, "--root", str(tmp_path)], env=env,
                          capture_output=True).returncode == 0
    assert (tmp_path / "docs" / "models.md").read_text(encoding="utf-8") == readme
    assert (tmp_path / "zoo" / "voc-fcn8s" / "README.md").exists()
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".tmp-")]


@pytest.mark.parametrize("head_name", ["8s", "16s"])
def test_siftflow_two_headed_file_loads_the_semantic_head(tmp_path, rgb, head_name):
    spec = caffe_nets.vgg16_fcn(head_name, num_classes=33, width=0.125)
    layers = caffe_nets.random_blobs(spec, seed=6)
    head = ("score_fr", "upscore2", "score_pool4", "upscore_pool4", "score_pool3", "upscore8", "upscore16")
    sift = [(f"{n}_sem" if n in head else n, t, a) for n, t, a in layers]
    geo = caffe_nets.vgg16_fcn(head_name, num_classes=3, width=0.125)
    sift += [(f"{n}_geo", t, a) for n, t, a in caffe_nets.random_blobs(geo, seed=7) if n in head]
    path = tmp_path / f"siftflow-fcn{head_name}-heavy.caffemodel"
    from fcn_keras.weights.caffemodel import write_caffemodel

    write_caffemodel(path, sift)
    # Reference: the same weights as a single-head net, run by OpenCV.
    single = tmp_path / "single.caffemodel"
    write_caffemodel(single, layers)
    image = rgb(45, 53)
    expected = caffe_nets.run_opencv(spec, single, image)["score"]
    model = fcn_keras.build("vgg16", head_name, num_classes=33, width=0.125, weights=str(path))
    actual = keras.ops.convert_to_numpy(model(image[None]))[0]
    assert caffe_nets.rel_error(actual, expected) <= 1e-4


def test_cli_zoo(capsys):
    from fcn_keras.cli import main

    assert main(["zoo"]) == 0
    out = capsys.readouterr().out
    assert "voc-fcn8s" in out and "mean IU 65.5" in out and "134,489,759" in out
    assert main(["zoo", "--json"]) == 0
    assert '"voc-fcn8s-atonce"' in capsys.readouterr().out


@pytest.mark.slow  # converts a full-width GoogLeNet
def test_cli_convert(tmp_path, capsys):
    """A full-size GoogLeNet caffemodel (BVLC layout) -> a .keras FCN that keeps its weights."""
    from fcn_keras.cli import main

    spec = caffe_nets.googlenet_classifier(width=1.0)
    src = tmp_path / "bvlc_googlenet.caffemodel"
    blobs = {n: a for n, _, a in caffe_nets.random_caffemodel(spec, src, seed=8, extra=caffe_nets.GOOGLENET_AUX)}
    out = tmp_path / "fcn32s-googlenet.keras"
    assert main(["convert", str(src), "--backbone", "googlenet", "--head", "32s", "-o", str(out)]) == 0
    assert "21 classes" in capsys.readouterr().out
    model = keras.models.load_model(out)
    assert (model.backbone_name, model.head_name, model.num_classes) == ("googlenet", "32s", 21)
    np.testing.assert_array_equal(model.get_layer("conv2_3x3").get_weights()[0],
                                  blobs["conv2/3x3"][0].transpose(2, 3, 1, 0))
    assert not [p for p in os.listdir(tmp_path) if ".tmp" in p]
    # An existing output is not overwritten without --overwrite; a file needs an architecture.
    assert main(["convert", str(src), "--backbone", "googlenet", "--head", "32s", "-o", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(["convert", str(src), "-o", str(tmp_path / "x.keras")]) == 2
    assert "--backbone" in capsys.readouterr().err
