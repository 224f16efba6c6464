"""Data errors, and how they cross the tf.data boundary.

Checks that run inside a `tf.data` pipeline (file decoding in Python, label and size checks
in the graph) cannot raise a Python exception to the caller: TensorFlow turns every failure
into a `tf.errors.OpError`. Each check here therefore fails with a `tf.debugging.Assert`
whose only datum is `MARKER` followed by the message (one line, naming the file and the
value), and `reraise_data_errors` turns an `OpError` carrying that marker back into
a `DataError` with the message alone. Failing through `Assert` rather than an
exception inside `tf.numpy_function` also keeps TensorFlow from logging the Python
traceback of the loader.
"""

from __future__ import annotations

import contextlib

import tensorflow as tf

from fcn_keras.conventions import MARKER, DataError, data_error_message  # noqa: F401 - re-exported


def assert_valid(ok, message, *tensors):
    """Pass `tensors` through once `ok` holds; otherwise fail with a marked message.

    Args:
        ok: scalar bool tensor.
        message: scalar string tensor (or str), one line: what is wrong and where.
        *tensors: tensors to return, computed after the check.

    Returns:
        `tensors` (a tuple), each depending on the check.
    """
    check = tf.debugging.Assert(ok, [tf.strings.join([MARKER, message])])
    with tf.control_dependencies([check]):
        return tuple(tf.identity(t) for t in tensors)


@contextlib.contextmanager
def reraise_data_errors():
    """Turn TensorFlow errors that carry a data error into `DataError`.

    Wrap any code that iterates a `fcn_keras.data.pipeline` or a source's dataset,
    `model.fit` / `evaluate` / `predict` included; it also works as a decorator::

        with fcn_keras.data.reraise_data_errors():
            model.fit(train, epochs=2)

    Other errors pass through unchanged.

    Raises:
        DataError: the data error's message (the file and the value), without the
            TensorFlow traceback it came with.
    """
    try:
        yield
    except tf.errors.OpError as e:
        message = data_error_message(e)
        if message is None:
            raise
        raise DataError(message) from None
