#!/usr/bin/env bash
# The test suite: everything on the TensorFlow backend, then the model tests on JAX
# (model code is keras.ops only, so the zoo also runs on JAX and PyTorch).
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pytest -q -p no:cacheprovider tests "$@"
KERAS_BACKEND=jax python -m pytest -q -p no:cacheprovider tests/models "$@"
