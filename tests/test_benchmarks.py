"""The speed benchmark runs end to end at a tiny width (figures are not asserted, only sane)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(args, timeout=900):
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "speed.py"), *args],
                          capture_output=True, text=True, timeout=timeout, env=env)


def test_speed_benchmark_tiny_grid(tmp_path):
    torch_args = [] if _has_torch() else ["--no-torch"]  # torch: the benchmark extra
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


_NO_TF = r"""
import runpy, sys
sys.modules["tensorflow"] = None  # any `import tensorflow` now raises ImportError
sys.argv = ["gpu_jax.py", "--size", "40", "--batch", "2", "--steps", "1", "--rounds", "1",
            "--width", "0.0625", "--policies", "mixed_float16", "--out", sys.argv[1], *sys.argv[2:]]
runpy.run_path("benchmarks/gpu_jax.py", run_name="__main__")
assert sys.modules.get("tensorflow") is None
print("no tensorflow")
"""


def test_gpu_script_runs_under_jax_without_tensorflow(tmp_path):
    """The GPU script on JAX CPU at a tiny size: fit (paper's recipe and metrics, float16 with
    loss scaling) and predict, with TensorFlow made unimportable."""
    pytest.importorskip("jax")
    extra = [] if _has_torch() else ["--no-torch"]
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu",
           "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    out = tmp_path / "gpu.json"
    res = subprocess.run([sys.executable, "-c", _NO_TF, str(out), *extra], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=1800)
    assert res.returncode == 0 and "no tensorflow" in res.stdout, res.stderr[-4000:]
    report = json.loads(out.read_text())
    run = report["results"]["keras_jax/mixed_float16"]
    assert run["train"]["images_per_s"] > 0 and run["infer"]["images_per_s"] > 0
    assert all(np.isfinite(v) for v in run["warmup_logs"].values())


def _has_torch():
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def test_bfloat16_variant_and_its_agreement():
    """`--bf16`'s pieces: the bfloat16 tf.function variant and its label agreement with float32."""
    sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
    import speed

    from fcn_keras.models import with_precision

    model, _ = speed.build_pair("alexnet", "8s", 0.0625, with_torch=False)
    fast = with_precision(model, "bfloat16")
    x = np.random.default_rng(0).normal(0, 50, size=(1, 45, 45, 3)).astype("float32")
    agree = speed.bfloat16_agreement(model, fast, x)
    assert 0.9 < agree["label_agreement"] <= 1 and agree["label_agreement_wide_margin"] == 1.0
    assert 1e-4 < agree["relative_error"] < 0.05  # bfloat16 computed, close to float32
    fns = speed.inference_fns(model, None, 45, 1, fast)
    assert "tf_function_bfloat16" in fns and fns["tf_function_bfloat16"]().dtype == np.float32
