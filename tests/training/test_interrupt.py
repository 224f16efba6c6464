"""Ctrl-C (a real SIGINT to a real `fcn-keras train` process) in the middle of an epoch:
exit 130 with one line saying where the backup is; the rerun says where it resumes and the
run ends with history.json, log.csv and curves.png covering every epoch.

The signal is sent at a point the test observes, not after a sleep: the run backs up every
`BACKUP_EVERY` steps, and the test interrupts as soon as a backup from inside the second
epoch exists, with `STEPS - BACKUP_EVERY` steps still to go (each step also writes a backup
now and then, so no CPU runs them in the few milliseconds between seeing it and signalling).
"""

import csv
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import ctrl_c_as_at_a_terminal

pytestmark = pytest.mark.slow  # Ctrl-C runs: a 600-step epoch in a subprocess

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


STEPS, BACKUP_EVERY = 600, 10


def _train(out, stdout):
    env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("TF_CONFIG", None)
    return subprocess.Popen(
        [sys.executable, "-m", "fcn_keras.cli", "train", "--backbone", "alexnet", "--width",
         "0.0625", "--head", "32s", "--image-size", "32", "--num-examples", "4",
         "--batch-size", "2", "--crop-size", "32", "--epochs", "2", "--steps-per-epoch", str(STEPS),
         "--backup-every", str(BACKUP_EVERY), "--val-split", "none", "--seed", "0", "--out", out],
        stdout=stdout, stderr=subprocess.PIPE, text=True, env=env, start_new_session=False,
        preexec_fn=ctrl_c_as_at_a_terminal)


def _backup_state(backup):
    """The backup's {"epoch", "step"}, or None while there is none (it is written atomically)."""
    try:
        with open(os.path.join(backup, "training_metadata.json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def test_sigint_mid_epoch_saves_a_backup_and_the_rerun_resumes(tmp_path):
    out = str(tmp_path / "run")
    backup = os.path.join(out, "fcn32s", "backup")
    log = tmp_path / "first.out"
    with open(log, "w") as f:
        proc = _train(out, f)
        deadline = time.monotonic() + 600
        while True:  # wait until the second epoch (0-based 1) has saved a backup mid-way
            state = _backup_state(backup)
            if state and state["epoch"] == 1 and state["step"] > 0:
                break
            assert proc.poll() is None, proc.stderr.read()[-3000:]
            assert time.monotonic() < deadline, "the second epoch did not start in 600 s"
            time.sleep(0.01)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    assert "epoch 1/2" in log.read_text()  # the first epoch had ended
    assert proc.returncode == 130, err[-3000:]
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines == [f"fcn-keras train: interrupted; the backup is in {backup}: "
                     f"run the same command again to resume"], err[-3000:]
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    with open(os.path.join(backup, "training_metadata.json")) as f:
        state = json.load(f)
    assert state["epoch"] == 1 and 0 < state["step"] < STEPS, state  # mid second epoch
    assert os.path.exists(os.path.join(backup, "latest.weights.h5"))
    assert not os.path.exists(os.path.join(out, "model.keras"))

    result = _train(out, subprocess.PIPE)
    stdout, err = result.communicate(timeout=600)
    assert result.returncode == 0, err[-3000:]
    assert f"resuming from epoch 2, step {state['step']} of {backup}" in stdout, stdout
    assert re.search(r"^epoch 2/2  loss \d", stdout, re.M), stdout
    with open(os.path.join(out, "fcn32s", "history.json")) as f:
        history = json.load(f)
    assert len(history["loss"]) == 2 and all(v is not None for v in history["loss"])
    with open(os.path.join(out, "fcn32s", "log.csv")) as f:
        assert [int(r["epoch"]) for r in csv.DictReader(f)] == [0, 1]
    for name in ("model.keras", "curves.png", "history.json", "fcn32s/curves.png"):
        assert os.path.exists(os.path.join(out, name)), name
    assert not os.path.exists(backup)  # removed once the run finished


def test_ctrl_c_during_a_backup_write_waits_for_it():
    """A real SIGINT inside the backup's write is held until the write is done, then raised."""
    from fcn_keras.training.callbacks import _ctrl_c_after

    before = signal.signal(signal.SIGINT, signal.default_int_handler)  # as at a terminal
    try:
        done = []
        try:
            with _ctrl_c_after():
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.05)   # the signal is handled here, in the block: no KeyboardInterrupt yet
                done.append("written")
        except KeyboardInterrupt:
            done.append("interrupted")
        assert done == ["written", "interrupted"]
        with _ctrl_c_after() as pending:  # save_now's way: a second Ctrl-C while stopping is dropped
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)
            pending.clear()
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, before)
