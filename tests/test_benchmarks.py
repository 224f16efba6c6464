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
sys.argv = ["gpu_jax.py", "--dry-run", "--out", sys.argv[1], *sys.argv[2:]]
runpy.run_path("benchmarks/gpu_jax.py", run_name="__main__")
assert sys.modules.get("tensorflow") is None
print("no tensorflow")
"""


def test_gpu_script_dry_run_without_tensorflow(tmp_path):
    """The GPU script's dry run on JAX CPU, with TensorFlow made unimportable: the port's
    agreement check, the synthetic shapes trained through a PyDataset (mixed_bfloat16) and
    evaluated, and Keras' jitted train step in the three training policies (AlexNet)."""
    pytest.importorskip("jax")
    extra = [] if _has_torch() else ["--no-torch"]
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu",
           "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    out = tmp_path / "gpu.json"
    res = subprocess.run([sys.executable, "-c", _NO_TF, str(out), "--only", "vgg16_8s/check",
                          "synthetic/mixed_bfloat16", "alexnet_32s/training/40", *extra], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=1800)
    assert res.returncode == 0 and "no tensorflow" in res.stdout, res.stderr[-4000:]
    report = json.loads(out.read_text())
    assert report["tensorflow_imported"] is False and report["dry_run"] is True
    blocks = report["blocks"]
    if not extra:
        assert blocks["vgg16_8s/check"]["relative_error_port_vs_keras"] <= 1e-4
    syn = blocks["synthetic/mixed_bfloat16"]
    assert syn["finite"] and syn["steps"] == 6 and 0 <= syn["val"]["mean_iou"] <= 1
    train = blocks["alexnet_32s/training/40/b2"]
    for policy in ("float32", "mixed_bfloat16", "mixed_float16"):
        assert train[f"keras_jax/{policy}"]["images_per_s"] > 0
    assert "synthetic/mixed_bfloat16" in res.stdout and "keras_jax/mixed_float16" in res.stdout


def test_numpy_shapes_are_the_bundled_set():
    """benchmarks/shapes_numpy.py draws, without TensorFlow, the very examples of
    fcn_keras.data.shapes (same seeds, same code), and batches them in a PyDataset."""
    sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
    import shapes_numpy

    import fcn_keras

    ref = list(fcn_keras.data.shapes("val", num_examples=3, image_size=32))
    images, masks = shapes_numpy.arrays("val", 3, image_size=32)
    for (image, mask), got_image, got_mask in zip(ref, images, masks):
        np.testing.assert_array_equal(got_image, image)
        np.testing.assert_array_equal(got_mask, mask)
    assert set(np.unique(masks)) <= {0, 1, 2, 3, 255} and len(set(np.unique(masks))) > 2
    batches = shapes_numpy.py_dataset(images, masks, 2, shuffle_seed=0)
    x, y = batches[0]
    assert len(batches) == 1 and x.shape == (2, 32, 32, 3) and x.dtype == np.float32 and y.dtype == np.int32
    with pytest.raises(ValueError, match="image_size"):
        shapes_numpy.arrays("val", 2, image_size=(32, 40))


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
