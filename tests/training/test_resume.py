"""A run killed mid-epoch (no clean-up at all) resumes from its last backup; the finished run
leaves a model, logs, checkpoints and a history of every epoch. On every Keras backend."""

import csv
import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow  # killed and resumed training on three backends

RUNNER = os.path.join(os.path.dirname(__file__), "runner.py")
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _env(backend="tensorflow"):
    env = dict(os.environ, KERAS_BACKEND=backend, JAX_PLATFORMS="cpu")
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    env.pop("TF_CONFIG", None)
    return env


@pytest.mark.parametrize("backend", ["tensorflow", "jax", "torch"])
def test_killed_run_resumes_losing_at_most_one_epoch(tmp_path, backend):
    pytest.importorskip(backend)
    out_dir = str(tmp_path / "run")
    # 4 epochs of 4 batches; crash (os._exit, no clean-up) after batch 2 of epoch index 2
    first = subprocess.run([sys.executable, RUNNER, "resume", str(tmp_path / "a.json"),
                            out_dir, "4", "2,1"], env=_env(backend), capture_output=True, text=True,
                           timeout=300)
    assert first.returncode == 17, first.stderr[-3000:]
    assert not os.path.exists(tmp_path / "a.json")       # it really died
    assert not os.path.exists(os.path.join(out_dir, "model.keras"))
    with open(os.path.join(out_dir, "log.csv")) as f:
        done = [int(r["epoch"]) for r in csv.DictReader(f)]
    assert done == [0, 1]                                   # epochs 0 and 1 completed

    second = subprocess.run([sys.executable, RUNNER, "resume", str(tmp_path / "b.json"),
                             out_dir, "4"], env=_env(backend), capture_output=True, text=True,
                            timeout=300)
    assert second.returncode == 0, second.stderr[-3000:]
    with open(os.path.join(out_dir, "epochs_started.txt")) as f:
        started = [int(v) for v in f.read().split()]
    # first process: 0, 1, 2 (killed in 2); second resumes at 2: only epoch 2's partial
    # work was lost
    assert started == [0, 1, 2, 2, 3]
    with open(tmp_path / "b.json") as f:
        res = json.load(f)
    assert res["epochs_run"] == 4  # the returned history holds the first process's epochs too
    with open(os.path.join(out_dir, "log.csv")) as f:
        assert [int(r["epoch"]) for r in csv.DictReader(f)] == [0, 1, 2, 3]
    with open(os.path.join(out_dir, "history.json")) as f:
        history = json.load(f)
    assert len(history["loss"]) == 4 and None not in history["loss"]
    assert history["loss"][2:] == res["loss"][2:]
    assert os.path.exists(os.path.join(out_dir, "model.keras"))
    assert os.path.exists(os.path.join(out_dir, "checkpoints", "last.weights.h5"))
    assert not os.path.exists(os.path.join(out_dir, "backup"))  # cleaned up when finished
