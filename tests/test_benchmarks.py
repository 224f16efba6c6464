"""The speed benchmark runs end to end at a tiny width (figures are not asserted, only sane)."""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(args, timeout=900):
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "speed.py"), *args],
                          capture_output=True, text=True, timeout=timeout, env=env)


def test_speed_benchmark_tiny_grid(tmp_path):
    try:
        import torch  # noqa: F401  (the benchmark extra)
        torch_args = []
    except ImportError:
        torch_args = ["--no-torch"]
    out = tmp_path / "speed.json"
    res = _run(["--backbones", "vgg16", "--heads", "8s", "--sizes", "45", "--train-sizes", "32",
                "--batches", "1", "--repeats", "1", "--width", "0.0625", "--no-memory",
                "--out", str(out), *torch_args])
    assert res.returncode == 0, res.stderr[-4000:]
    report = json.loads(out.read_text())
    assert report["peak"]["peak_gflops"] > 0 and report["threads"] == 2
    infer, train = report["results"]
    assert (infer["mode"], train["mode"]) == ("inference", "training")
    assert infer["gmac_per_image_computed"] < infer["gmac_per_image"]
    assert {"keras_predict", "tf_function", "tf_function_xla",
            "tf_function_dense_upsampling"} <= set(infer["variants"])
    assert "keras_train_step_xla" in train["variants"]
    if not torch_args:  # outputs were checked to agree before timing
        assert infer["keras_torch_relative_error"] <= 1e-4
        assert infer["ratio_keras_over_torch"]["median"] > 0
    assert "tf_function_xla" in res.stdout and "GFLOP/s" in res.stdout


def test_macs_of_fcn8s_vgg16_at_500():
    sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
    import speed

    dense, computed = speed.macs("vgg16", "8s", 500)
    # the figure: about 181 GMAC at 500x500 (dense upsampling as defined)
    assert 175e9 < dense < 190e9 and dense - computed > 0.5e9


def test_memory_child_reports_peak_rss():
    torch = pytest.importorskip("torch")  # noqa: F841
    res = _run(["--child", "torch", "vgg16", "32s", "40", "1", "training", "--width", "0.0625"])
    assert res.returncode == 0, res.stderr[-3000:]
    mem = json.loads(res.stdout.strip().splitlines()[-1])
    assert mem["peak_rss_mb"] >= mem["after_build_mb"] > 0
