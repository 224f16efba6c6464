"""When a machine of a `MultiWorkerMirroredStrategy` cluster is lost, and resuming after it.

* JAX processes (`start_cluster(coordinator=...)`): a process killed ends the others'
  collectives (its connections close) with `WorkerLost` naming it; one gone silent is
  dropped by JAX's coordination service after `distribute.JAX_HEARTBEAT_TIMEOUT_S`, which
  ends every other process itself (its own message, a non-zero exit).
* A worker or the chief killed (or its host gone): the survivors' collective ops fail, at
  once when its port refuses connections, else when TensorFlow's coordination service misses
  its heartbeats for `distribute.HEARTBEAT_TIMEOUT_S` seconds. `train` turns that failure
  into `WorkerLost`: one line naming the lost task and the backup folder (the command line
  exits 1 with it).
* Restarting every worker with the same command resumes from the last backup. Each worker
  keeps a backup (the chief in `<out_dir>/backup`, worker i in
  `<out_dir>/workers/worker_<i>/backup`); a kill can leave them one save apart, so before
  training every other worker takes the chief's (`use_chief_backup`): all of them resume
  from the same weights, optimizer state and epoch. This needs `out_dir` on storage every
  machine sees (one folder on 127.0.0.1, NFS or a bucket mount across machines).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil

from .distribute import jax_processes_started, multiworker_strategy_started, tf_config, worker_info

BACKUP_FILES = ("latest.weights.h5", "training_metadata.json")


class WorkerLost(ConnectionError):
    """A task of the cluster stopped answering during training.

    Attributes:
        task: the lost task as "worker 1 (host:port)", or "a peer" when TensorFlow's error
            does not name one.
        backup_dir: this worker's backup folder (None: no backup).
    """

    def __init__(self, task, backup_dir, detail):
        self.task, self.backup_dir = task, backup_dir
        where = (f"the backup is in {backup_dir}: start every worker again with the same "
                 f"command to resume" if backup_dir else "no backup was kept (out_dir=None)")
        super().__init__(f"lost {task} of the cluster ({detail}); training stopped; {where}")


@contextlib.contextmanager
def reraise_cluster_errors(out_dir, backup_dir):
    """Turns a TensorFlow op error inside a multi-worker `fit` into `WorkerLost`, naming the
    backup the cluster resumes from (`resume_from(out_dir, backup_dir)`).

    Outside a `MultiWorkerMirroredStrategy` process, and for errors that are not about the
    cluster (a `DataError`, a NaN), nothing changes."""
    try:
        yield
    except Exception as err:  # noqa: BLE001 - only TensorFlow's op errors are translated
        lost = (_lost_task(err) if multiworker_strategy_started() else
                _lost_jax_process(err) if jax_processes_started() else None)
        if lost is None:
            raise
        task, detail = lost
        raise WorkerLost(task, resume_from(out_dir, backup_dir), detail) from None


def _lost_task(err):
    """(the lost task in words, a short reason) from a TensorFlow error, or None."""
    import tensorflow as tf

    if not isinstance(err, (tf.errors.UnavailableError, tf.errors.AbortedError,
                            tf.errors.CancelledError, tf.errors.DeadlineExceededError,
                            tf.errors.InternalError, tf.errors.FailedPreconditionError)):
        return None
    text = str(err)
    cluster = tf_config().get("cluster", {})
    own_type, own_index, _, _ = worker_info()
    named = []
    for job, index in re.findall(r"/job:(\w+)/replica:\d+/task:(\d+)", text):
        if (job, int(index)) != (own_type, own_index) and (job, int(index)) not in named:
            named.append((job, int(index)))
    for address in re.findall(r"ipv4:([\w.\-]+:\d+)", text):
        for job, addresses in cluster.items():
            if address in addresses and (job, addresses.index(address)) != (own_type, own_index):
                if (job, addresses.index(address)) not in named:
                    named.insert(0, (job, addresses.index(address)))
    if not named and "CoordinationService" in text:  # this worker lost the service's host
        named.append(("chief", 0) if "chief" in cluster else ("worker", 0))
    cluster_words = ("unavailable", "heartbeat", "connect", "coordination", "collective",
                     "peer", "socket", "abort", "unhealthy")
    if not named and not any(w in text.lower() for w in cluster_words):
        return None
    if named:
        job, index = named[0]
        addresses = cluster.get(job, [])
        at = f" ({addresses[index]})" if index < len(addresses) else ""
        task = f"{job} {index}{at}"
    else:
        task = "a peer"
    return task, f"{type(err).__name__}: {_reason(text)}"


# What a collective or the coordination service says when a peer process went away (a CI run
# saw "UNKNOWN: Gloo AllGather failed: ... Connection reset by peer" raised as a ValueError).
_JAX_PEER_GONE = ("gloo", "connection reset by peer", "coordination service", "failed to send rpc")


def _lost_jax_process(err):
    """(the lost process in words, a short reason) from a JAX runtime error of a multi-process
    run (a collective whose peer went away), or None.

    The process named is the one the error names ("task N" / "rank N"), else, with two
    processes, the other one; else "a process"."""
    text = str(err)
    if type(err).__name__ not in ("JaxRuntimeError", "XlaRuntimeError") and not (
            isinstance(err, (RuntimeError, ValueError, ConnectionError))
            and any(w in text.lower() for w in _JAX_PEER_GONE)):
        return None
    own, n, coordinator = jax_processes_started()
    named = [int(i) for i in re.findall(r"(?:task|rank|process)[ :_]+(\d+)", text, re.I)
             if int(i) != own and int(i) < n]
    lost = named[0] if named else (1 - own if n == 2 else None)
    if lost is None:
        task = "a process"
    else:
        task = f"process {lost}" + (f" (the coordinator, {coordinator})" if lost == 0 else "")
    return task, f"{type(err).__name__}: {_reason(text)}"


def _reason(text):
    """The first line of a TensorFlow error that says what happened, shortened."""
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("Graph execution error", "Detected at node", "[[",
                                         "File ", "Additional GRPC")):
            return line[:160]
    return "the collective operation failed"


def resume_from(out_dir, own_backup):
    """The backup folder the cluster resumes from: the chief's (`<out_dir>/backup`) when this
    is another worker of a multi-worker cluster that sees it, else `own_backup`."""
    if own_backup is None or worker_info().is_chief or not multiworker_strategy_started():
        return own_backup
    chief_dir = os.path.join(out_dir, "backup")
    return chief_dir if os.path.isdir(chief_dir) else own_backup


def use_chief_backup(out_dir):
    """On a worker other than the chief, replaces its backup with the chief's (when the chief
    has one in `out_dir/backup`), so that every worker resumes from the same state. Does
    nothing on the chief, outside a multi-worker cluster, or when the chief's backup is not
    visible here (`out_dir` not shared: each worker resumes from its own).

    Args:
        out_dir: the `train` output folder shared by the cluster.
    """
    _, index, n_workers, is_chief = worker_info()
    if is_chief or n_workers < 2 or not multiworker_strategy_started():
        return
    chief_dir = os.path.join(out_dir, "backup")
    own_dir = os.path.join(out_dir, "workers", f"worker_{index}", "backup")
    if not _has_backup(chief_dir):
        return
    os.makedirs(own_dir, exist_ok=True)
    for name in BACKUP_FILES:
        shutil.copyfile(os.path.join(chief_dir, name), os.path.join(own_dir, name + ".part"))
    for name in BACKUP_FILES:
        os.replace(os.path.join(own_dir, name + ".part"), os.path.join(own_dir, name))


def _has_backup(folder):
    return all(os.path.exists(os.path.join(folder, name)) for name in BACKUP_FILES)
