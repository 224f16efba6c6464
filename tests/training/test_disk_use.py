"""What a run leaves on disk: the optimizer state only in the backup (where resuming needs
it), the checkpoints `keep` names, a final `model.keras` without the optimizer, and a line
saying how much disk the run needs before it starts."""

import io
import os
import re
import zipfile

import h5py
import keras
import pytest

import fcn_keras
from fcn_keras import data, training
from tests.conftest import fcn_keras_cli


def _groups(path):
    """The top-level groups of the weights in a `.weights.h5` or `.keras` file."""
    if path.endswith(".keras"):
        with zipfile.ZipFile(path) as z:
            with h5py.File(io.BytesIO(z.read("model.weights.h5")), "r") as f:
                return set(f.keys())
    with h5py.File(path, "r") as f:
        return set(f.keys())


@pytest.mark.slow  # two staged training runs of the command line in subprocesses
def test_staged_run_keeps_optimizer_state_out_of_its_files(tmp_path):
    out = tmp_path / "run"
    run = fcn_keras_cli("train", "--backbone", "alexnet", "--width", "0.0625", "--schedule", "staged",
                        "--data", "shapes", "--num-examples", "2", "--image-size", "32",
                        "--keep", "best", "--quiet", "--out", str(out))
    assert run.returncode == 0, run.stderr[-2000:]
    said = re.search(r"disk: this run writes about ([\d.]+) (MB|GB) to ", run.stdout)
    assert said, run.stdout
    assert run.stdout.index("disk:") < run.stdout.index("epoch 1/1")  # before it starts
    files = [os.path.join(d, n) for d, _, names in os.walk(out) for n in names
             if n.endswith((".keras", ".h5"))]
    assert len(files) == 3 * 3 + 1, files  # per stage model.keras, model.weights.h5, best; model.keras
    for path in files:
        assert "optimizer" not in _groups(path), path
        assert "backup" not in path and not path.endswith("last.weights.h5"), path
    written = sum(os.path.getsize(p) for p in files)
    stated = float(said.group(1)) * (1e9 if said.group(2) == "GB" else 1e6)
    assert 0.5 * written < stated < 2 * written, (stated, written)
    # the same command again: every stage is done and loads, without Keras' optimizer warning
    rerun = fcn_keras_cli("train", "--backbone", "alexnet", "--width", "0.0625", "--schedule", "staged",
                          "--data", "shapes", "--num-examples", "2", "--image-size", "32",
                          "--keep", "best", "--quiet", "--out", str(out))
    assert rerun.returncode == 0 and "epoch 1/1" not in rerun.stdout, rerun.stderr[-2000:]
    assert "Skipping variable loading for optimizer" not in rerun.stderr, rerun.stderr[-2000:]
    # the final model loads for inference, uncompiled, without a warning about an optimizer
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = keras.models.load_model(out / "model.keras")
    assert model.head_name == "8s" and not model.compiled
    assert not [w for w in caught if "optimizer" in str(w.message)], [str(w.message) for w in caught]


def test_keep_names_checkpoints_and_the_backup_alone_holds_the_optimizer_state(tmp_path):
    with pytest.raises(ValueError, match="keep"):
        training.default_callbacks(str(tmp_path / "unused"), keep=("first",))
    keras.utils.set_random_seed(0)
    model = fcn_keras.build("alexnet", "32s", num_classes=4, width=0.0625)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))

    class Stop(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            raise KeyboardInterrupt  # after the first epoch's checkpoint

    ds = data.pipeline(data.shapes("train", num_examples=2, image_size=32), batch_size=1)
    with pytest.raises(training.TrainingInterrupted) as info:
        training.train(model, ds, epochs=2, out_dir=tmp_path, callbacks=[Stop()], verbose=0,
                       keep=("last",))
    assert "optimizer" in _groups(os.path.join(info.value.backup_dir, "latest.weights.h5"))
    assert os.listdir(tmp_path / "checkpoints") == ["last.weights.h5"]
    assert "optimizer" not in _groups(str(tmp_path / "checkpoints" / "last.weights.h5"))
