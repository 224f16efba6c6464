"""`backup_every` reaches the backup from the recipe and the command line: a process killed
mid-epoch leaves the state of its last periodic save, and a bad value is refused by name."""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import fcn_keras_cli

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ENV = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="2")

# run_recipe with backup_every=3; a callback kills the process (no clean-up, like a crash)
# after batch 8 of the first epoch, so the last periodic save is the one after batch 6.
KILLED_RUN = """
import os, sys
import keras
from fcn_keras import data, training

class Crash(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        if batch + 1 == 8:
            os._exit(3)

keras.utils.set_random_seed(0)
ds = data.pipeline(data.shapes("train", num_examples=2, image_size=32), batch_size=2,
                   crop_size=32, training=True)
training.run_recipe("alexnet", ds, schedule="32s", num_classes=4, width=0.0625, epochs=1,
                    out_dir=sys.argv[1], steps_per_epoch=20, optimizer="adam", backup_every=3,
                    callbacks=[Crash()], verbose=0)
"""


@pytest.mark.slow  # a killed training run in a subprocess
def test_killed_run_keeps_its_last_periodic_backup(tmp_path):
    out = str(tmp_path / "run")
    proc = subprocess.run([sys.executable, "-c", KILLED_RUN, out], env=ENV, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 3, proc.stderr[-3000:]
    backup = os.path.join(out, "fcn32s", "backup")
    with open(os.path.join(backup, "training_metadata.json")) as f:
        state = json.load(f)
    assert (state["epoch"], state["step"]) == (0, 6), state
    assert os.path.exists(os.path.join(backup, "latest.weights.h5"))


def test_cli_refuses_a_negative_backup_every(tmp_path):
    proc = fcn_keras_cli("train", "--backbone", "alexnet", "--width", "0.0625", "--head", "32s",
                         "--image-size", "32", "--num-examples", "2", "--val-split", "none",
                         "--backup-every", "-1", "--out", str(tmp_path / "run"), timeout=300)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "`--backup-every` must be a number of steps >= 0" in proc.stderr
    assert "Received: --backup-every -1" in proc.stderr
    assert "Traceback" not in proc.stderr
