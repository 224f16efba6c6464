"""Scaling out with TensorFlow's own engines (`tf.distribute`); nothing home-made.

* one machine, many GPUs: `MirroredStrategy` (`strategy="mirrored"`)
* many machines: `MultiWorkerMirroredStrategy` (`strategy="multiworker"`), configured
  by the `TF_CONFIG` environment variable on every worker, e.g.:

      TF_CONFIG='{"cluster": {"worker": ["host1:12345", "host2:12345"]},
                  "task": {"type": "worker", "index": 0}}'

  Worker 0 is the chief: it writes checkpoints, logs and the final model; the others
  write to `<out_dir>/workers/worker_<i>` (Keras' multi-worker checkpoint protocol).
* TPUs: `strategy="tpu"` (`TPUClusterResolver`).

Metrics sum their confusion matrices across replicas, and the global batch is split
between replicas (Keras scales each replica's loss by `1 / num_replicas`).
"""

from __future__ import annotations

import json
import os

STRATEGIES = ("auto", "default", "one_device", "mirrored", "multiworker", "tpu")


def tf_config():
    """The parsed `TF_CONFIG` environment variable.

    Returns:
        its dict, or {} when it is unset or blank.

    Raises:
        ValueError: it is not JSON, or has no "cluster" entry (the message quotes it).
    """
    raw = os.environ.get("TF_CONFIG", "")
    if not raw.strip():
        return {}
    try:
        cfg = json.loads(raw)
    except json.JSONDecodeError as e:
        raise ValueError(f"Expected TF_CONFIG to be JSON ({e}). Received: "
                         f"TF_CONFIG={raw[:200]!r}") from None
    if not isinstance(cfg, dict) or "cluster" not in cfg:
        raise ValueError(f"Expected TF_CONFIG to hold a 'cluster' entry. Received: "
                         f"TF_CONFIG={raw[:200]!r}")
    return cfg


def worker_info():
    """This process's place in the cluster `TF_CONFIG` describes.

    Returns:
        (task_type, task_index, num_workers, is_chief); ("worker", 0, 1, True) without
        `TF_CONFIG`.
    """
    cfg = tf_config()
    if not cfg:
        return "worker", 0, 1, True
    cluster = cfg.get("cluster", {})
    task = cfg.get("task", {})
    ttype, tindex = task.get("type", "worker"), int(task.get("index", 0))
    n = len(cluster.get("worker", [])) + len(cluster.get("chief", []))
    is_chief = ttype == "chief" or (ttype == "worker" and tindex == 0 and "chief" not in cluster)
    return ttype, tindex, max(n, 1), is_chief


def get_strategy(name="auto", devices=None):
    """A `tf.distribute.Strategy` by name.

    Args:
        name: `"auto"` (multi-worker if `TF_CONFIG` lists several workers, mirrored
            if this machine has several GPUs, else the default strategy), `"default"`,
            `"one_device"`, `"mirrored"`, `"multiworker"` or `"tpu"`; or a
            strategy instance (returned as is).
        devices: device list for `mirrored` / `one_device` (e.g.
            `["/cpu:0", "/cpu:1"]` after `tf.config.set_logical_device_configuration`).

    Returns:
        a `tf.distribute.Strategy`.

    Raises:
        ValueError: an unknown name, or "multiworker" without `TF_CONFIG`.
    """
    import tensorflow as tf

    if isinstance(name, tf.distribute.Strategy):
        return name
    if name not in STRATEGIES:
        raise ValueError(f"Expected `strategy` to be one of {STRATEGIES} or a "
                         f"tf.distribute.Strategy. Received: strategy={name!r}")
    if name == "auto":
        _, _, n_workers, _ = worker_info()
        if n_workers > 1:
            name = "multiworker"
        elif len(tf.config.list_logical_devices("GPU")) > 1:
            name = "mirrored"
        else:
            name = "default"
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "one_device":
        return tf.distribute.OneDeviceStrategy((devices or ["/cpu:0"])[0])
    if name == "mirrored":
        return tf.distribute.MirroredStrategy(devices=devices)
    if name == "multiworker":
        if not tf_config():
            raise ValueError("Expected TF_CONFIG describing the cluster for "
                             "strategy='multiworker'. Received: TF_CONFIG unset")
        return tf.distribute.MultiWorkerMirroredStrategy()
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return tf.distribute.TPUStrategy(resolver)
