"""`dynamolog up` refuses a system whose own ports overlap before it starts anything (a metrics
endpoint that cannot bind would otherwise stop its service during start)."""

from __future__ import annotations

from pathlib import Path

from dynamolog.launcher import SystemSpec, _overlapping_ports


def test_metrics_ports_over_the_kafka_ports_are_refused() -> None:
    spec = SystemSpec(data_dir=Path("/tmp/x"), port=8310, storage_base_port=7310, kafka_base_port=9402,
                      metrics_base_port=9400)
    assert _overlapping_ports(spec) == (9402, "admin's metrics (--metrics-port)", "Kafka broker 1 (--kafka-port)")


def test_the_defaults_and_an_external_kafka_do_not_overlap() -> None:
    assert _overlapping_ports(SystemSpec(data_dir=Path("/tmp/x"), metrics_base_port=9400)) is None
    # an external cluster's ports are not this system's
    assert _overlapping_ports(SystemSpec(data_dir=Path("/tmp/x"), bootstrap="127.0.0.1:9402", kafka_base_port=9402,
                                         metrics_base_port=9400)) is None


def test_a_router_port_among_the_storage_ports_is_refused() -> None:
    spec = SystemSpec(data_dir=Path("/tmp/x"), port=7302, storage_base_port=7300, storage_nodes=3)
    assert _overlapping_ports(spec) == (7302, "router (--port)", "storage node n2 (--storage-port)")
