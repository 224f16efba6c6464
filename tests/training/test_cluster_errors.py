"""Which errors of a multi-process JAX run mean a lost process (`training.cluster`), from the
messages JAX runs have raised."""

import pytest

from fcn_keras.training import cluster, distribute

GLOO = ("UNKNOWN: Gloo AllGather failed: [external/gloo/gloo/transport/tcp/pair.cc:538] "
        "Read error [127.0.0.1]:9093: Connection reset by peer")  # a CI run, the coordinator killed


@pytest.fixture
def two_processes(monkeypatch):
    monkeypatch.setattr(distribute, "_JAX_PROCESS", [(1, 2, "127.0.0.1:9093")])
    monkeypatch.setattr(cluster, "jax_processes_started", distribute.jax_processes_started)


def test_a_collective_whose_peer_went_away_names_the_lost_process(two_processes):
    task, detail = cluster._lost_jax_process(ValueError(GLOO))
    assert task == "process 0 (the coordinator, 127.0.0.1:9093)" and "Gloo AllGather failed" in detail
    with pytest.raises(cluster.WorkerLost, match=r"lost process 0 \(the coordinator"):
        with cluster.reraise_cluster_errors(None, None):
            raise ValueError(GLOO)


def test_other_errors_are_left_alone(two_processes):
    assert cluster._lost_jax_process(ValueError("mask.png: a label 7 outside 0..3")) is None
    with pytest.raises(ValueError, match="mask.png"):
        with cluster.reraise_cluster_errors(None, None):
            raise ValueError("mask.png: a label 7 outside 0..3")
