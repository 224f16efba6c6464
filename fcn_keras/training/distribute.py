"""Scaling out with existing engines: `tf.distribute` (TensorFlow backend) and
`keras.distribution` (JAX backend, `get_distribution`); nothing home-made.

* one machine, many GPUs: `MirroredStrategy` (`strategy="mirrored"`)
* many machines: `MultiWorkerMirroredStrategy` (`strategy="multiworker"`), configured
  by the `TF_CONFIG` environment variable on every worker, e.g.:

      TF_CONFIG='{"cluster": {"worker": ["host1:12345", "host2:12345"]},
                  "task": {"type": "worker", "index": 0}}'

  It must be created before TensorFlow runs any op (`start_cluster`, or
  `get_strategy("multiworker")` first thing); one per process. Worker 0 is the chief: it
  writes checkpoints, logs and the final model; the others write to
  `<out_dir>/workers/worker_<i>`. A lost worker: `fcn_keras.training.cluster`.
* many JAX processes: `start_cluster(coordinator=..., num_processes=..., process_id=...)`
  (`keras.distribution.initialize`), then a `keras.distribution` over every process's devices.
* TPUs: `strategy="tpu"` (`TPUClusterResolver`).

Metrics sum their confusion matrices across replicas, and the global batch is split
between replicas (Keras scales each replica's loss by `1 / num_replicas`).
"""

from __future__ import annotations

import contextlib
import json
import os
import warnings
from typing import NamedTuple

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


class WorkerInfo(NamedTuple):
    """This process's place in a cluster (`worker_info`)."""

    task_type: str  # "worker" or "chief" (TF_CONFIG's task type)
    task_index: int  # index among the processes of that type
    num_workers: int  # processes in the cluster, the chief included
    is_chief: bool  # the process that writes the run's files


def worker_info():
    """This process's place in the cluster `TF_CONFIG` describes.

    Returns:
        a `WorkerInfo` (task_type, task_index, num_workers, is_chief); ("worker", 0, 1,
        True) without `TF_CONFIG`. After `start_cluster` joined JAX processes: ("worker", process id,
        number of processes, process id == 0).
    """
    if _JAX_PROCESS:
        index, n, _ = _JAX_PROCESS[0]
        return WorkerInfo("worker", index, n, index == 0)
    cfg = tf_config()
    if not cfg:
        return WorkerInfo("worker", 0, 1, True)
    cluster = cfg.get("cluster", {})
    task = cfg.get("task", {})
    ttype, tindex = task.get("type", "worker"), int(task.get("index", 0))
    n = len(cluster.get("worker", [])) + len(cluster.get("chief", []))
    is_chief = ttype == "chief" or (ttype == "worker" and tindex == 0 and "chief" not in cluster)
    return WorkerInfo(ttype, tindex, max(n, 1), is_chief)


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
        return _multiworker_strategy()
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return tf.distribute.TPUStrategy(resolver)


# --- many machines: MultiWorkerMirroredStrategy ----------------------------------------------

# Bounds on how long a worker waits for its cluster: every worker must have joined within
# JOIN_TIMEOUT_S (else each one waiting ends with one line, exit 1: `_join_watchdog`), and a
# worker whose
# heartbeats stop for HEARTBEAT_TIMEOUT_S counts as lost, which ends the others' training
# (`fcn_keras.training.cluster.WorkerLost`). The environment variables override them.
JOIN_TIMEOUT_S = int(os.environ.get("FCN_KERAS_JOIN_TIMEOUT", "120"))
HEARTBEAT_TIMEOUT_S = int(os.environ.get("FCN_KERAS_HEARTBEAT_TIMEOUT", "10"))
# JAX processes: JAX's own default (a JAX process compiling under load can miss 10 s)
JAX_HEARTBEAT_TIMEOUT_S = int(os.environ.get("FCN_KERAS_HEARTBEAT_TIMEOUT", "100"))

_MULTIWORKER = []  # this process's MultiWorkerMirroredStrategy (TensorFlow allows one)
_PROGRAM = ["python"]  # how the join watchdog's line starts (`start_cluster(program=...)`)


def _multiworker_strategy():
    """This process's `MultiWorkerMirroredStrategy`, created on the first call.

    TensorFlow configures collective ops once, before it runs any op: the first call must come
    before anything else touches TensorFlow (`fcn-keras train` makes it first thing; a
    program calls `get_strategy("multiworker")` at its top). Later calls return the same one.

    Raises:
        ValueError: `TF_CONFIG` is unset or does not place this worker in its cluster.
        RuntimeError: TensorFlow already ran an op (the message says how to call it).
    """
    if _MULTIWORKER:
        return _MULTIWORKER[0]
    import tensorflow as tf
    from tensorflow.python.eager import context

    check_tf_config()
    ctx = context.context()
    if ctx._context_handle is not None:  # noqa: SLF001 - the test TensorFlow itself makes
        raise RuntimeError(
            "strategy='multiworker' must be created before TensorFlow runs any op: call "
            "fcn_keras.training.get_strategy('multiworker') first thing in the program, before "
            "building data sets or models, and build the model in its scope() (fcn-keras train "
            "and run_recipe(strategy=...) called first do this)")
    cfg = tf_config()
    cluster = cfg["cluster"]
    jobs = [coordinated_job(job, len(cluster[job])) for job in ("chief", "worker") if job in cluster]
    leader = f"/job:{'chief' if 'chief' in cluster else 'worker'}/replica:0/task:0"
    ctx.configure_coordination_service(
        service_type="standalone", service_leader=leader, coordinated_jobs=jobs,
        cluster_register_timeout_in_ms=JOIN_TIMEOUT_S * 1000,
        heartbeat_timeout_in_ms=HEARTBEAT_TIMEOUT_S * 1000)
    with _join_watchdog(cluster):
        _MULTIWORKER.append(tf.distribute.MultiWorkerMirroredStrategy())
    return _MULTIWORKER[0]


@contextlib.contextmanager
def _join_watchdog(cluster, me=None):
    """Ends the process (one line on stderr, exit 1) when the block has not finished within
    JOIN_TIMEOUT_S seconds.

    TensorFlow waits for missing peers inside native code that holds Python's lock, neither
    times out (its registration timeout is not enforced there) nor lets Python run a thread
    or a signal handler. So the line comes from a small watchdog process (its stderr is this
    one's), and `faulthandler`'s native timer ends this process with exit code 1 a second
    later (its traceback goes to /dev/null)."""
    import faulthandler
    import subprocess
    import sys

    limit = JOIN_TIMEOUT_S
    ttype, index = me or worker_info()[:2]
    peers = ", ".join(f"{job} {i} {a}" for job, addresses in cluster.items()
                      for i, a in enumerate(addresses) if (job, i) != (ttype, index))
    line = (f"{_PROGRAM[0]}: error: {ttype} {index} could not join its cluster within {limit} "
            f"s: not every peer ({peers}) answered. Start every one with its own index and "
            f"check that each address is reachable from here\n")
    try:
        err_fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        err_fd = 2
    watchdog = subprocess.Popen(
        [sys.executable, "-c", _WATCHDOG, str(limit), line], stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL, stderr=err_fd)
    sink = open(os.devnull, "w")
    faulthandler.dump_traceback_later(limit + 1, exit=True, file=sink)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()
        sink.close()
        watchdog.stdin.close()  # the watchdog leaves without a word
        watchdog.wait()


# Waits for its stdin to close; after argv[1] seconds still open, writes argv[2] to stderr.
_WATCHDOG = ("import select, sys\n"
             "ready, _, _ = select.select([sys.stdin], [], [], float(sys.argv[1]))\n"
             "if not ready:\n    sys.stderr.write(sys.argv[2]); sys.stderr.flush()\n")


def multiworker_strategy_started():
    """Whether this process created its `MultiWorkerMirroredStrategy`."""
    return bool(_MULTIWORKER)


def coordinated_job(name, num_tasks):
    """A `CoordinatedJob` entry of TensorFlow's coordination service configuration."""
    from tensorflow.compiler.xla.tsl.protobuf import coordination_config_pb2

    return coordination_config_pb2.CoordinatedJob(name=name, num_tasks=num_tasks)


def check_tf_config():
    """Raises ValueError (one line, quoting TF_CONFIG) unless `TF_CONFIG` describes a cluster
    of "chief" / "worker" addresses (host:port) and a task inside it."""
    cfg = tf_config()
    raw = os.environ.get("TF_CONFIG", "")[:300]
    if not cfg:
        raise ValueError("Expected TF_CONFIG describing the cluster for strategy='multiworker', "
                         "e.g. '{\"cluster\": {\"worker\": [\"host1:12345\", \"host2:12345\"]}, "
                         "\"task\": {\"type\": \"worker\", \"index\": 0}}'. Received: TF_CONFIG unset")
    cluster, task = cfg["cluster"], cfg.get("task")
    for job, addresses in cluster.items() if isinstance(cluster, dict) else []:
        if not isinstance(addresses, list) or not all(
                isinstance(a, str) and a.rpartition(":")[2].isdigit() for a in addresses):
            raise ValueError(f"Expected TF_CONFIG's cluster[{job!r}] to be a list of 'host:port' "
                             f"addresses. Received: TF_CONFIG={raw!r}")
    if not isinstance(cluster, dict) or not (cluster.get("worker") or cluster.get("chief")):
        raise ValueError(f"Expected TF_CONFIG's cluster to list 'worker' (and optionally "
                         f"'chief') addresses. Received: TF_CONFIG={raw!r}")
    if not isinstance(task, dict) or task.get("type") not in ("chief", "worker"):
        raise ValueError(f"Expected TF_CONFIG's task to be {{'type': 'worker' or 'chief', "
                         f"'index': i}}. Received: TF_CONFIG={raw!r}")
    index, n = task.get("index"), len(cluster.get(task["type"], []))
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < n:
        raise ValueError(f"Expected TF_CONFIG's task index in 0..{n - 1} (the {n} "
                         f"{task['type']!r} addresses of its cluster). Received: "
                         f"TF_CONFIG={raw!r}")


def start_cluster(strategy=None, backend=None, program=None, coordinator=None,
                  num_processes=None, process_id=None):
    """Joins the cluster a program was started in, before anything else runs.

    * TensorFlow backend with `strategy` "multiworker" (or "auto" with a `TF_CONFIG` of
      several workers): creates the process's `MultiWorkerMirroredStrategy` (its collective
      ops must be configured before TensorFlow runs any op).
    * JAX backend with `num_processes` > 1 (or `KERAS_DISTRIBUTION_NUM_PROCESSES`):
      `keras.distribution.initialize` (`jax.distributed`; before any JAX computation), after
      which `keras.distribution.list_devices()` lists every process's devices and
      `worker_info()` places this process (process 0 is the chief).
    * Otherwise nothing.

    Args:
        strategy: the `strategy` name (`get_strategy`).
        backend: the Keras backend (default: Keras' own).
        program: how a line that ends the process begins (e.g. "fcn-keras train").
        coordinator, num_processes, process_id: JAX: process 0's "host:port", the number of
            processes and this one's id (default: the `KERAS_DISTRIBUTION_JOB_ADDRESSES`,
            `KERAS_DISTRIBUTION_NUM_PROCESSES`, `KERAS_DISTRIBUTION_PROCESS_ID` variables).

    Returns:
        the strategy (TensorFlow), or None.

    Raises:
        ValueError: JAX process settings given on another backend, or incomplete /
            out of range.
    """
    if program:
        _PROGRAM[0] = program
    backend = backend or _backend()
    processes = jax_processes(coordinator, num_processes, process_id)
    if processes is not None:
        if backend != "jax":
            raise ValueError(f"A coordinator and processes (keras.distribution.initialize) "
                             f"need the JAX backend. Received: KERAS_BACKEND={backend!r}; on "
                             f"TensorFlow describe the cluster with TF_CONFIG and "
                             f"strategy='multiworker'")
        _initialize_jax(*processes)
        return None
    if backend != "tensorflow":
        return None
    if strategy == "multiworker" or (strategy == "auto" and worker_info().num_workers > 1):
        return _multiworker_strategy()
    return None


def jax_processes(coordinator=None, num_processes=None, process_id=None):
    """(coordinator, num_processes, process_id) of a multi-process JAX run, from the arguments
    or the `KERAS_DISTRIBUTION_*` variables; None for one process.

    Raises:
        ValueError: one is missing, or the id is not in 0..num_processes-1 (named).
    """
    env = os.environ
    coordinator = coordinator or env.get("KERAS_DISTRIBUTION_JOB_ADDRESSES") or None
    num_processes = num_processes or env.get("KERAS_DISTRIBUTION_NUM_PROCESSES") or None
    if process_id is None:
        process_id = env.get("KERAS_DISTRIBUTION_PROCESS_ID") or None
    if num_processes is None and coordinator is None and process_id is None:
        return None
    try:
        n = int(num_processes)
        i = int(process_id)
    except (TypeError, ValueError):
        n = i = None
    if n is None or not coordinator or not 0 <= i < n:
        raise ValueError(f"Expected a coordinator 'host:port' (process 0's), a number of "
                         f"processes and a process id in 0..N-1 (--coordinator, "
                         f"--num-processes, --process-id or KERAS_DISTRIBUTION_JOB_ADDRESSES, "
                         f"_NUM_PROCESSES, _PROCESS_ID). Received: coordinator={coordinator!r}, "
                         f"num_processes={num_processes!r}, process_id={process_id!r}")
    if n == 1:
        return None
    return coordinator.split(",")[0], n, i


_JAX_PROCESS = []  # (process id, number of processes, coordinator) after `_initialize_jax`


def _initialize_jax(coordinator, num_processes, process_id):
    """`keras.distribution.initialize`, bounded: joining by JOIN_TIMEOUT_S (`_join_watchdog`),
    and a process whose heartbeats stop for JAX_HEARTBEAT_TIMEOUT_S counts as lost (JAX's
    coordination service then ends every other process)."""
    import functools

    import jax
    import keras

    if _JAX_PROCESS:
        return
    cluster = {"process": [coordinator] + [f"id {k}" for k in range(1, num_processes)]}
    jax_initialize = jax.distributed.initialize  # Keras calls it without timeouts
    jax.distributed.initialize = functools.partial(
        jax_initialize, initialization_timeout=JOIN_TIMEOUT_S,
        heartbeat_timeout_seconds=JAX_HEARTBEAT_TIMEOUT_S)
    try:
        with _join_watchdog(cluster, ("process", process_id)):
            keras.distribution.initialize(coordinator, num_processes, process_id)
    finally:
        jax.distributed.initialize = jax_initialize
    _JAX_PROCESS.append((process_id, num_processes, coordinator))
    # Each process reads its shard of the data (DataParallel.distribute_dataset), whose length
    # tf.data cannot tell: Keras warns at the end of every first epoch that it ran out of data.
    warnings.filterwarnings("ignore", message="Your input ran out of data")


def jax_processes_started():
    """(process id, number of processes, coordinator "host:port") once `start_cluster`
    joined JAX processes, else None."""
    return _JAX_PROCESS[0] if _JAX_PROCESS else None


def _backend():
    import keras

    return keras.backend.backend()


# --- keras.distribution (JAX) ---------------------------------------------------------------

DISTRIBUTIONS = ("data_parallel", "model_parallel")

# ModelParallel shards the two big fully convolutional layers (VGG16's fc6 alone holds 103M of
# FCN-8s' 134M parameters) along their output channels over the mesh's "model" axis; every
# other weight is replicated, and the data is split over the "batch" axis.
MODEL_PARALLEL_LAYOUT = {"fc6/kernel": (None, None, None, "model"), "fc6/bias": ("model",),
                         "fc7/kernel": (None, None, None, "model"), "fc7/bias": ("model",)}


def get_distribution(name, devices=None, mesh_shape=None):
    """A `keras.distribution.Distribution` (JAX backend) by name.

    Args:
        name: None (no distribution), `"data_parallel"` (`keras.distribution.DataParallel`:
            the weights replicated on every device, each global batch split between them),
            `"model_parallel"` (`keras.distribution.ModelParallel` on a `(batch, model)`
            device mesh: fc6 and fc7 sharded along their output channels over "model"
            (`MODEL_PARALLEL_LAYOUT`), the batch split over "batch"), or a
            `keras.distribution.Distribution` (returned as is).
        devices: the devices to use, e.g. `["cpu:0", "cpu:1"]` or `jax.devices()`
            (default: all of them, `keras.distribution.list_devices()`).
        mesh_shape: `(batch, model)` for "model_parallel" (default `(1, len(devices))`);
            the product must equal the number of devices, and fc6 / fc7's channels must
            divide by `model`.

    Returns:
        the distribution, or None.

    Raises:
        ValueError: an unknown name, a backend other than JAX, or a mesh that does not fit
            the devices.
    """
    import keras
    import numpy as np

    if name is None:
        return None
    if _is_distribution(name):
        require_backend_for_distribution(name)
        return name
    if name not in DISTRIBUTIONS:
        raise ValueError(f"Expected `distribution` to be one of {DISTRIBUTIONS} or a "
                         f"keras.distribution.Distribution. Received: distribution={name!r}")
    require_backend_for_distribution(name)
    devices = list(devices) if devices is not None else keras.distribution.list_devices()
    devices = [d if isinstance(d, str) else f"{d.platform}:{d.id}" for d in devices]
    if name == "data_parallel":
        return keras.distribution.DataParallel(devices=devices)
    if mesh_shape is None:
        mesh_shape = (1, len(devices))
    mesh_shape = tuple(mesh_shape) if isinstance(mesh_shape, (tuple, list)) else (mesh_shape,)
    if len(mesh_shape) != 2 or int(np.prod(mesh_shape)) != len(devices):
        raise ValueError(f"Expected `mesh_shape` (batch, model) whose product is the number of "
                         f"devices ({len(devices)}). Received: mesh_shape={mesh_shape!r}")
    mesh = keras.distribution.DeviceMesh(mesh_shape, ["batch", "model"], devices)
    layout_map = keras.distribution.LayoutMap(mesh)
    for path, axes in MODEL_PARALLEL_LAYOUT.items():
        layout_map[path] = axes
    return keras.distribution.ModelParallel(layout_map=layout_map, batch_dim_name="batch")


def require_backend_for_distribution(distribution):
    """Raises ValueError naming the backend when `keras.distribution` cannot run on it."""
    import keras

    backend = keras.backend.backend()
    if backend != "jax":
        alternative = ("a tf.distribute strategy: strategy='mirrored' (one machine) or "
                       "'multiworker' (TF_CONFIG)" if backend == "tensorflow" else
                       "KERAS_BACKEND=jax (keras.distribution) or KERAS_BACKEND=tensorflow "
                       "(tf.distribute): Keras' PyTorch backend trains on one device")
        raise ValueError(f"distribution={_name(distribution)} (keras.distribution) runs on the "
                         f"JAX backend only. Received: KERAS_BACKEND={backend!r}; use {alternative}")


def require_backend_for_strategy(strategy):
    """Raises ValueError naming the backend when a `tf.distribute` strategy cannot run on it.

    `strategy` None, "default" and "auto" pass on every backend (no strategy asked for; "auto"
    picks none outside TensorFlow)."""
    import keras

    backend = keras.backend.backend()
    if strategy in (None, "default", "auto") or backend == "tensorflow":
        return
    alternative = ("distribution='data_parallel' (keras.distribution.DataParallel) or "
                   "'model_parallel'" if backend == "jax" else
                   "KERAS_BACKEND=jax with distribution='data_parallel', or "
                   "KERAS_BACKEND=tensorflow: Keras' PyTorch backend trains on one device")
    raise ValueError(f"strategy={_name(strategy)} is a tf.distribute strategy and needs the "
                     f"TensorFlow backend. Received: KERAS_BACKEND={backend!r}; use {alternative}")


def check_model_placement(model, distribution):
    """Raises ValueError unless `model`'s weights live on `distribution`'s devices (JAX).

    Keras places a variable when it is created: a model built outside
    `distribution.scope()` keeps its weights on one device and cannot train under it."""
    import numpy as np

    want = set(np.asarray(distribution.device_mesh.devices).reshape(-1).tolist())
    for v in model.weights:
        sharding = getattr(getattr(v, "value", None), "sharding", None)
        if sharding is None:
            continue
        have = {f"{d.platform}:{d.id}" for d in sharding.device_set}
        if have != {str(d).lower() for d in want}:
            raise ValueError(
                f"Expected the model's weights on the distribution's devices {sorted(want)}. "
                f"Received: weight {v.path!r} on {sorted(have)}; build (and compile) the model "
                f"inside `with distribution.scope():` (run_recipe does this itself)")


def _is_distribution(value):
    """A `keras.distribution` Distribution (DataParallel, ModelParallel; Keras exports no
    public base class)."""
    import keras

    return isinstance(value, (keras.distribution.DataParallel, keras.distribution.ModelParallel))


def _name(value):
    return repr(value) if isinstance(value, str) else type(value).__name__
