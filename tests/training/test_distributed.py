"""tf.distribute: 2 logical CPUs under MirroredStrategy train exactly like one device,
and a two-worker MultiWorkerMirroredStrategy cluster on 127.0.0.1 completes an epoch."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import free_ports

pytestmark = pytest.mark.slow  # multi-device and multi-worker training in subprocesses

RUNNER = os.path.join(os.path.dirname(__file__), "runner.py")
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _env(**extra):
    env = dict(os.environ)
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    env.pop("TF_CONFIG", None)
    env.update(extra)
    return env


def _run(args, env, timeout):
    proc = subprocess.run([sys.executable, RUNNER, *args], env=env, capture_output=True,
                          text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_mirrored_two_cpus_equals_one_device(tmp_path):
    out = str(tmp_path / "mirrored.json")
    _run(["mirrored", out], _env(), timeout=300)
    with open(out) as f:
        res = json.load(f)
    assert res["one"]["replicas"] == 1 and res["two"]["replicas"] == 2
    init = [np.array(w) for w in res["init"]]
    one = [np.array(w) for w in res["one"]["weights"]]
    two = [np.array(w) for w in res["two"]["weights"]]
    moved = max(float(np.abs(a - b).max()) for a, b in zip(one, init))
    assert moved > 1e-3, "training did not change the weights: the comparison would be empty"
    for a, b in zip(one, two):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(res["one"]["loss"], res["two"]["loss"], rtol=1e-4)
    # metrics: the confusion matrices of both replicas are summed, so the scores match
    for name in ("pixel_accuracy", "mean_accuracy", "mean_iou", "frequency_weighted_iou"):
        assert abs(res["one"]["scores"][name] - res["two"]["scores"][name]) < 1e-5, name




def test_multiworker_two_workers_complete_an_epoch(tmp_path):
    ports = free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    out_dir = str(tmp_path / "run")
    procs = []
    for i in range(2):
        cfg = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})
        procs.append(subprocess.Popen(
            [sys.executable, RUNNER, "multiworker", str(tmp_path / f"w{i}.json"), out_dir],
            env=_env(TF_CONFIG=cfg), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    try:
        outs = [p.communicate(timeout=300) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, (_, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]
    results = []
    for i in range(2):
        with open(tmp_path / f"w{i}.json") as f:
            results.append(json.load(f))
    for i, r in enumerate(results):
        assert r["replicas"] == 2 and r["workers"] == 2 and r["index"] == i
        assert r["epochs"] == 1 and np.isfinite(r["loss"][0])
    assert results[0]["chief"] and not results[1]["chief"]
    # both workers computed the same (all-reduced) loss; only the chief wrote the model
    assert abs(results[0]["loss"][0] - results[1]["loss"][0]) < 1e-5
    assert os.path.exists(os.path.join(out_dir, "model.keras"))
    assert os.path.exists(os.path.join(out_dir, "log.csv"))
    assert os.path.exists(os.path.join(out_dir, "workers", "worker_1", "log.csv"))
