"""docker-compose.yml and the Dockerfile run what `dynamolog up` runs (dynamolog/launcher.py),
checked without Docker: the compose file parsed by PyYAML, its services compared with the
launcher's, its commands' modules and the Dockerfile's copies checked against the repository."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import yaml

from dynamolog.launcher import SINGLETON_PROCESSES, SINGLETONS, SystemSpec

ROOT = Path(__file__).resolve().parents[2]


def compose() -> dict[str, Any]:
    doc = yaml.safe_load((ROOT / "docker-compose.yml").read_text())  # YAML 1.1 with merge keys, as compose reads it
    assert isinstance(doc, dict)
    return doc


def launcher_processes(storage_nodes: int) -> set[str]:
    """The processes `dynamolog up --storage-nodes N` starts (names as in its system.json)."""
    spec = SystemSpec(data_dir=Path("/nonexistent"), storage_nodes=storage_nodes, metrics_base_port=1)
    return set(spec.metrics_ports())  # router, storage-n<i>, and each singleton with its standbys


def test_every_service_the_launcher_runs_is_in_the_compose_file() -> None:
    services = compose()["services"]
    wanted = launcher_processes(3)
    assert wanted <= set(services), sorted(wanted - set(services))
    assert {"indexer", "indexer-2", "backup", "backup-2", "admin", "admin-2"} <= set(services)
    assert len([s for s in SINGLETONS for _ in range(SINGLETON_PROCESSES)]) == 6


def test_the_replicated_topology_three_brokers_three_nodes_one_per_zone() -> None:
    services = compose()["services"]
    brokers = {n: s for n, s in services.items() if n.startswith("kafka-")}
    assert len(brokers) == 3
    assert sorted(b["environment"]["KAFKA_BROKER_RACK"] for b in brokers.values()) == ["a", "b", "c"]
    assert all(b["environment"]["KAFKA_MIN_INSYNC_REPLICAS"] == 2 for b in brokers.values())
    zones = [services[f"storage-n{i}"]["command"][services[f"storage-n{i}"]["command"].index("--zone") + 1]
             for i in (1, 2, 3)]
    assert zones == ["a", "b", "c"]


def test_each_service_runs_the_launchers_module_and_restarts() -> None:
    services = compose()["services"]
    for name in launcher_processes(3):
        cmd = services[name]["command"]
        module = cmd[cmd.index("-m") + 1]
        kind = name.split("-")[0] if not name.startswith("storage") else "storage"
        assert module == f"services.{kind}", (name, module)
        assert importlib.util.find_spec(module) is not None, module
        assert services[name]["restart"] == "unless-stopped", name
        assert services[name]["environment"]["KAFKA_BOOTSTRAP_SERVERS"].count("kafka-") == 3
    for extra in ("loadgen",):  # the demo load and the router's console and REST gateway
        cmd = services[extra]["command"]
        assert importlib.util.find_spec(cmd[cmd.index("-m") + 1]) is not None
    assert "127.0.0.1:8000:8000" in services["router"]["ports"]


def test_volumes_used_are_declared_and_the_dockerfile_copies_what_the_services_need() -> None:
    doc = compose()
    declared = set(doc["volumes"])
    for name, svc in doc["services"].items():
        for v in svc.get("volumes", []):
            assert v.split(":")[0] in declared, (name, v)
    docker = (ROOT / "Dockerfile").read_text()
    for path in ("dynamolog", "services", "schemas", "pyproject.toml"):
        assert f"COPY {path}" in docker or f" {path} " in docker, path
    # the console's files live inside services/, so the image carries them
    assert (ROOT / "services/router/gateway/static/index.html").exists()


def test_the_second_region_is_what_dynamolog_up_region_us_west_2_runs_with_its_own_kafka() -> None:
    services = compose()["services"]
    west = {n for n in services if n.startswith("west-")}
    wanted = {f"west-{n}" for n in launcher_processes(1)}
    assert wanted <= west, sorted(wanted - west)
    assert west - wanted == {"west-kafka-1", "west-keys", "west-link"}
    for name in wanted:
        svc = services[name]
        cmd = svc["command"]
        kind = name.removeprefix("west-").split("-")[0]
        assert cmd[cmd.index("-m") + 1] == f"services.{kind}", name
        assert svc["restart"] == "unless-stopped", name
        env = svc["environment"]
        # its own cluster and region, never the other region's brokers or secrets
        assert env["KAFKA_BOOTSTRAP_SERVERS"] == "west-kafka-1:9092" and env["DYNAMOLOG_REGION"] == "us-west-2", name
        assert svc["volumes"][0].split(":")[0] == "west-secrets", name
        assert "keys" not in svc["depends_on"] and "west-keys" in svc["depends_on"], name
    for name in launcher_processes(3):
        assert services[name]["environment"]["DYNAMOLOG_REGION"] == "us-east-1", name
    kafka = services["west-kafka-1"]["environment"]
    assert kafka["KAFKA_CONTROLLER_QUORUM_VOTERS"] == "1@west-kafka-1:9093"
    assert kafka["KAFKA_CLUSTER_ID"] != services["kafka-1"]["environment"]["KAFKA_CLUSTER_ID"]
    assert kafka["KAFKA_MIN_INSYNC_REPLICAS"] == 1 and kafka["KAFKA_DEFAULT_REPLICATION_FACTOR"] == 1
    assert "127.0.0.1:8001:8000" in services["west-router"]["ports"]


def test_the_regions_are_linked_as_dynamolog_regions_add_links_them() -> None:
    from dynamolog.cli import build_parser

    services = compose()["services"]
    east, west = services["link"], services["west-link"]
    parsed = {}
    for name, svc in (("link", east), ("west-link", west)):
        cmd = svc["command"]
        assert cmd[:3] == ["python", "-m", "dynamolog.cli"], name
        args = build_parser().parse_args(cmd[3:])
        assert args.regions_command == "add" and args.from_env, name
        parsed[name] = args
    # each side names the other region and its router, and both use one replication key file
    assert (parsed["link"].name, parsed["link"].endpoint) == ("us-west-2", "http://west-router:8000")
    assert (parsed["west-link"].name, parsed["west-link"].endpoint) == ("us-east-1", "http://router:8000")
    assert parsed["link"].key_file == parsed["west-link"].key_file
    assert east["environment"]["DYNAMOLOG_REGION"] == "us-east-1"
    assert west["environment"]["DYNAMOLOG_REGION"] == "us-west-2"
    # the second side reads the key the first made
    assert west["depends_on"]["link"] == {"condition": "service_completed_successfully"}
    assert "link:/link:ro" in west["volumes"] and "link:/link" in east["volumes"]
    # the routers named are services of the file, on the port their command listens on
    for host, svc in (("router", services["router"]), ("west-router", services["west-router"])):
        cmd = svc["command"]
        assert cmd[cmd.index("--port") + 1] == "8000", host
