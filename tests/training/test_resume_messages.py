"""What a resumed staged run says is true: a finished stage is reloaded without Keras'
"Skipping variable loading for optimizer" warning (its optimizer state is not needed: the
next stage starts a fresh optimizer), and its weights come back exactly."""

import warnings

import numpy as np
import pytest

from fcn_keras import data
from fcn_keras.training import run_recipe


def _run(out_dir):
    train = data.pipeline(data.shapes("train", num_examples=2, image_size=(32, 32)), batch_size=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = run_recipe("alexnet", train, schedule="staged", num_classes=4, epochs=1,
                            width=0.0625, optimizer="adam", out_dir=out_dir, verbose=0)
    return result, [str(w.message) for w in caught]


@pytest.mark.slow  # two staged training runs
def test_rerun_of_finished_stages_loads_them_without_optimizer_warnings(tmp_path):
    first, _ = _run(tmp_path / "run")
    again, said = _run(tmp_path / "run")
    assert not [m for m in said if "Skipping variable loading" in m], said
    assert all(h is None for h in again.histories.values())  # every stage was reloaded
    for a, b in zip(first.model.weights, again.model.weights):
        np.testing.assert_array_equal(np.asarray(b), np.asarray(a))
