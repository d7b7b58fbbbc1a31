"""Small things a user meets with the ``dynamolog`` command: a reader that goes away early
(``dynamolog status | head``) and a second system on one machine (free ports found by ``up``)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from dynamolog.launcher import choose_ports, free_port_block


@pytest.fixture
def defaults() -> tuple[int, int, int]:
    """Stand-ins for the defaults 9092, 7001 and 9400 (those belong to a user's own system): three
    blocks inside 40 free ports found now."""
    import random

    base = free_port_block(random.randrange(20000, 50000), 40)
    return base, base + 12, base + 24


def test_a_reader_that_goes_away_leaves_no_traceback(tmp_path: Path) -> None:
    """As `dynamolog status | head`: the pipe's reader is gone before the command writes."""
    proc = subprocess.Popen([sys.executable, "-m", "dynamolog.cli", "status", "--data-dir", str(tmp_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader leaves before the interpreter has even started
    err = proc.stderr.read().decode()
    proc.wait(timeout=30)
    assert "Traceback" not in err and "BrokenPipeError" not in err, err
    assert err == ""


@contextmanager
def _taken(*ports: int) -> Iterator[None]:
    """Hold ``ports`` on 127.0.0.1 as another program would."""
    socks = []
    try:
        for p in ports:
            s = socket.socket()
            s.bind(("127.0.0.1", p))
            s.listen()
            socks.append(s)
        yield
    finally:
        for s in socks:
            s.close()


def test_free_defaults_are_used_as_they_are(tmp_path: Path, defaults: tuple[int, int, int]) -> None:
    c = choose_ports(tmp_path, 8430, 1, 1, kafka_port=None, storage_port=None, metrics_port=None,
                     kafka_managed=True, defaults=defaults)
    assert (c.kafka_base_port, c.storage_base_port + 1, c.metrics_base_port) == defaults
    assert c.notes == ()


def test_taken_defaults_move_to_the_next_free_ports(tmp_path: Path, defaults: tuple[int, int, int]) -> None:
    k, s, m = defaults
    with _taken(k + 1, s, m + 3):  # a controller port, the first storage port, one metrics port
        c = choose_ports(tmp_path, 8430, 3, 1, kafka_port=None, storage_port=None, metrics_port=None,
                         kafka_managed=True, defaults=defaults)
    assert c.kafka_base_port == k + 2  # both of the broker's ports (client, controller) free
    assert c.storage_base_port + 1 == s + 1  # nodes n1..n3 on s+1..s+3
    assert c.metrics_base_port == m + 4  # router, 3 nodes, 6 singletons: 10 consecutive ports
    assert len(c.notes) == 3 and "--kafka-port" in c.notes[0]


def test_ports_given_on_the_command_line_are_kept_even_when_taken(tmp_path: Path, defaults: tuple[int, int, int]) -> None:
    """`up` then refuses a busy port it was told to use, with the message it gives today."""
    k, s, _m = defaults
    with _taken(k, s):
        c = choose_ports(tmp_path, 8430, 1, 1, kafka_port=k, storage_port=s, metrics_port=0,
                         kafka_managed=True, defaults=defaults)
    assert (c.kafka_base_port, c.storage_base_port + 1, c.metrics_base_port) == (k, s, 0)


def test_a_data_directory_keeps_the_ports_it_had(tmp_path: Path, defaults: tuple[int, int, int]) -> None:
    """Kafka's cluster keeps its ports for life; the storage and metrics ports stay as last time."""
    k, s, m = (p + 4 for p in defaults)  # not the defaults: what this data directory used before
    (tmp_path / "kafka").mkdir()
    (tmp_path / "kafka" / "cluster.json").write_text(json.dumps({"base_port": k, "brokers": 1}))
    (tmp_path / "system.json").write_text(json.dumps({"storage_ports": {"n1": s}, "metrics_ports": {"router": m}}))
    c = choose_ports(tmp_path, 8430, 1, 1, kafka_port=None, storage_port=None, metrics_port=None,
                     kafka_managed=True, defaults=defaults)
    assert (c.kafka_base_port, c.storage_base_port + 1, c.metrics_base_port) == (k, s, m)


def test_the_router_port_is_never_chosen_for_another_service(tmp_path: Path, defaults: tuple[int, int, int]) -> None:
    s = defaults[1]
    c = choose_ports(tmp_path, s, 1, 1, kafka_port=None, storage_port=None, metrics_port=None,
                     kafka_managed=True, defaults=defaults)
    assert c.storage_base_port + 1 == s + 1
