"""Start and stop a whole local Dynamolog system: Kafka, storage nodes and a router.

Everything lives under one data directory::

    DATA/kafka/               the local Kafka cluster (see dynamolog.kafka.local)
    DATA/storage/<node>/      each storage node's RocksDB views
    DATA/logs/<service>.log   each service's log
    DATA/system.json          what runs: pids, ports, zones, bootstrap servers, namespace, the
                              supervisor's pid and each service's restart count
    DATA/system.key           the system key (0600): encrypts access keys at rest, authenticates
                              the services to each other (dynamolog.auth.systemkey)
    DATA/credentials.env      the administrator key (0600), made on the first ``up``

Data survives ``down`` then ``up`` with the same data directory: the logs are in Kafka, the
views in RocksDB, and the metadata in compacted topics.

Processes: the storage nodes ``storage-n<i>``, the router, the global tables' ``repout`` and
``repin`` (once each), and the auto-admin, the indexer and the backup service twice each (``admin`` / ``admin-2``, ``indexer`` / ``indexer-2``,
``backup`` / ``backup-2``; backups go to ``DATA/backups`` unless ``DYNAMOLOG_BACKUP_STORE`` names
another store): fenced singletons, one
active and one on standby (dynamolog/singleton.py). Brokers and storage nodes are spread over
the availability zones ``a``, ``b``, ``c`` round robin (broker i and storage node i share a
zone), so that one zone's loss takes at most one replica of every partition.
``SystemSpec(supervise=True)`` leaves a supervisor running that restarts a crashed service
(dynamolog/supervisor.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .auth import credentials, systemkey
from .config import Settings
from .kafka.local import LocalKafka

STATE_FILE = "system.json"
#: the availability zones that brokers and storage nodes are spread over, round robin
ZONES = ("a", "b", "c")
#: the services that run as fenced singletons, each started this many times (active + standby)
SINGLETONS = ("admin", "indexer", "backup")
SINGLETON_PROCESSES = 2
#: global tables' RepOut and RepIn (services/repout, services/repin): singletons too, one process
#: each (the supervisor restarts them; a change is never lost meanwhile, only delayed)
REPLICATION_SERVICES = ("repout", "repin")
#: the election groups' session timeout on a Kafka cluster that ``up`` starts (its brokers
#: accept down to 1 s): how soon a standby notices that the active died
ELECTION_SESSION_MS_LOCAL = 2000


def zone_of(index: int, zones: tuple[str, ...] = ZONES) -> str:
    """The zone of the ``index``-th (0-based) broker or storage node."""
    return zones[index % len(zones)]


def _say(msg: str) -> None:
    print(f"[dynamolog] {msg}", file=sys.stderr, flush=True)


@dataclass
class SystemSpec:
    """What ``dynamolog up`` starts."""

    data_dir: Path
    port: int = 8000
    brokers: int = 1
    storage_nodes: int = 1
    kafka_base_port: int = 9092
    storage_base_port: int = 7000
    namespace: str = "dyn"
    region: str = "us-east-1"
    bootstrap: str | None = None  # an existing cluster (KAFKA_BOOTSTRAP_SERVERS); None: start one
    initial_partitions: int = 2
    extra_env: dict[str, str] = field(default_factory=dict)
    #: verify SigV4 signatures and permissions on the DynamoDB endpoint (off: only for measuring)
    auth: bool = True
    #: leave a supervisor process running that restarts crashed services (``dynamolog up
    #: --detach``; the foreground ``dynamolog up`` supervises in its own process instead)
    supervise: bool = False
    #: availability zones, assigned round robin to the brokers (``broker.rack``) and storage nodes
    zones: tuple[str, ...] = ZONES
    #: the router's zone: its eventually consistent reads go to the replica there (decision 0050;
    #: ``dynamolog up`` puts it in the first zone); None: round robin over the replicas
    router_zone: str | None = None
    #: first Prometheus metrics port (docs/metrics.md): the router's; storage node i's is this + i,
    #: then the auto-admins' and the indexers'; 0: no metrics endpoints
    metrics_base_port: int = 0
    #: run the global tables' RepOut and RepIn (``dynamolog up`` always does; a system that never
    #: links another region, such as most test systems, can leave them out: they would idle)
    replication: bool = True

    def metrics_ports(self) -> dict[str, int]:
        """Service name -> its metrics port (empty when :attr:`metrics_base_port` is 0)."""
        if not self.metrics_base_port:
            return {}
        names = ["router", *(f"storage-n{i}" for i in range(1, self.storage_nodes + 1)),
                 *(s if k == 1 else f"{s}-{k}" for s in SINGLETONS for k in range(1, SINGLETON_PROCESSES + 1)),
                 *(REPLICATION_SERVICES if self.replication else ())]
        return {name: self.metrics_base_port + i for i, name in enumerate(names)}


def _metrics_args(spec: SystemSpec, name: str) -> list[str]:
    port = spec.metrics_ports().get(name)
    return [] if port is None else ["--metrics-port", str(port)]


def _overlapping_ports(spec: SystemSpec) -> tuple[int, str, str] | None:
    """(port, one use, another use) when two of the system's own ports coincide, else None: the
    router's, the storage nodes', the metrics endpoints' and the local Kafka cluster's (each broker
    takes its port and the next one, for its controller)."""
    uses: dict[int, str] = {}
    wanted = [(spec.port, "router (--port)")]
    wanted += [(spec.storage_base_port + i, f"storage node n{i} (--storage-port)")
               for i in range(1, spec.storage_nodes + 1)]
    wanted += [(p, f"{name}'s metrics (--metrics-port)") for name, p in spec.metrics_ports().items()]
    if spec.bootstrap is None:
        wanted += [(spec.kafka_base_port + k, f"Kafka broker {k // 2 + 1} (--kafka-port)")
                   for k in range(2 * spec.brokers)]
    for port, what in wanted:
        if port in uses:
            return port, uses[port], what
        uses[port] = what
    return None


def pid_alive(pid: int) -> bool:
    try:  # reap our own exited children so they do not linger as zombies
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child counts as gone
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except OSError:
        return True


def _stop_pid(pid: int, timeout_s: float = 15.0) -> None:
    if not pid_alive(pid):
        return
    with contextlib.suppress(ProcessLookupError):  # it may stop by itself meanwhile
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _stop_pids(pids: list[int], timeout_s: float = 15.0) -> None:
    """SIGTERM every process of ``pids`` at once, then SIGKILL those still running after ``timeout_s``."""
    running = [p for p in pids if pid_alive(p)]
    for pid in running:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while running and time.monotonic() < deadline:
        time.sleep(0.1)
        running = [p for p in running if pid_alive(p)]
    for pid in running:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _port_busy(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def free_port_block(start: int, count: int, avoid: set[int] | None = None) -> int:
    """The first port ``p >= start`` such that ``p .. p + count - 1`` are all free on 127.0.0.1 and
    none is in ``avoid`` (ports this system will use for something else)."""
    avoid = avoid or set()
    p = start
    while p + count <= 65535:
        block = range(p, p + count)
        taken = [q for q in block if q in avoid or _port_busy(q)]
        if not taken:
            return p
        p = taken[-1] + 1
    raise RuntimeError(f"no {count} consecutive free ports from {start} up")


@dataclass(frozen=True)
class PortChoice:
    """The ports ``dynamolog up`` uses, and for each one chosen by itself (not given on the
    command line) the line that tells the user why."""

    kafka_base_port: int
    storage_base_port: int  # storage node i listens on this + i
    metrics_base_port: int
    notes: tuple[str, ...] = ()


def choose_ports(data_dir: Path, router_port: int, storage_nodes: int, brokers: int, *,
                 kafka_port: int | None, storage_port: int | None, metrics_port: int | None,
                 kafka_managed: bool, defaults: tuple[int, int, int] = (9092, 7001, 9400)) -> PortChoice:
    """Ports for Kafka, the storage nodes and the metrics endpoints.

    A port given on the command line is used as it is (``up`` refuses it later when it is busy).
    One not given is, in this order: the port this data directory's system used before (Kafka's is
    fixed in its ``cluster.json``), else the default; and when that block is taken (another system
    on this machine), the next free block above it, so a second system needs only ``--port`` and
    ``--data-dir``."""
    old = System(data_dir).state() or {}
    notes: list[str] = []
    avoid = {router_port}

    def pick(what: str, flag: str, given: int | None, previous: int | None, default: int, count: int) -> int:
        if given is not None:
            avoid.update(range(given, given + count))
            return given
        start = previous if previous is not None else default
        port = free_port_block(start, count, avoid)
        if port != start:
            notes.append(f"{what}: port {start} is taken; using {port} ({flag} chooses)")
        avoid.update(range(port, port + count))
        return port

    kafka = kafka_port if kafka_port is not None else defaults[0]
    if kafka_managed:
        cluster = data_dir / "kafka" / "cluster.json"
        recorded: int | None = None
        if kafka_port is None and cluster.exists():
            try:
                recorded = int(json.loads(cluster.read_text())["base_port"])
            except (OSError, ValueError, KeyError):
                recorded = None
        if recorded is not None:  # a cluster keeps its ports for life
            kafka = recorded
            avoid.update(range(kafka, kafka + 2 * brokers))
        else:
            kafka = pick("Kafka", "--kafka-port", kafka_port, None, defaults[0], 2 * brokers)
    old_storage = min(old.get("storage_ports", {}).values(), default=None)
    storage = pick("storage nodes", "--storage-port", storage_port, old_storage, defaults[1], storage_nodes)
    metrics = 0
    if metrics_port != 0:
        old_metrics = min(old.get("metrics_ports", {}).values(), default=None)
        metrics = pick("metrics", "--metrics-port", metrics_port, old_metrics, defaults[2],
                       1 + storage_nodes + len(SINGLETONS) * SINGLETON_PROCESSES)
    return PortChoice(kafka, storage - 1, metrics, tuple(notes))


def _storage_ready(port: int, key: bytes) -> bool:
    """Whether the storage node on ``port`` has registered and opened its partitions."""
    import asyncio

    from .rpc import RpcClient

    async def ask() -> bool:
        client = RpcClient("127.0.0.1", port, connect_timeout_s=1.0, key=key)
        try:
            answer = await client.call("ping", timeout_s=2.0)
            return bool(answer.get("ready"))
        except Exception:  # noqa: BLE001 - not answering yet is the expected case while starting
            return False
        finally:
            await client.close()

    return asyncio.run(ask())


def health(port: int, timeout_s: float = 1.0) -> str | None:
    """The router's health line, or None when it does not answer."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=timeout_s) as r:
            return str(r.read().decode())
    except OSError:
        return None


class System:
    """A running (or stopped) local system described by ``DATA/system.json``."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.resolve()
        self.state_path = self.data_dir / STATE_FILE

    @property
    def credentials_path(self) -> Path:
        """``credentials.env``: the administrator key (``set -a; . credentials.env``)."""
        return self.data_dir / "credentials.env"

    def credentials(self) -> dict[str, str]:
        """The administrator key's environment lines (AWS_ACCESS_KEY_ID, ...); {} before the first up."""
        return credentials.read_env_file(self.credentials_path)

    def system_key(self) -> bytes:
        return systemkey.load(self.data_dir / systemkey.FILE_NAME)

    def rpc_key(self) -> bytes:
        """The key with which to talk to this system's services over the internal RPC."""
        return systemkey.internal_rpc_key(self.system_key())

    def settings(self) -> Settings:
        state = self.state()
        if state is None:
            raise RuntimeError(f"no system in {self.data_dir} (start one with: dynamolog up --data-dir {self.data_dir})")
        return Settings(bootstrap=state["bootstrap"], namespace=state["namespace"], region=state["region"])

    def state(self) -> dict[str, Any] | None:
        try:
            return dict(json.loads(self.state_path.read_text()))
        except (OSError, ValueError):
            return None

    def _spawn(self, name: str, args: list[str], env: dict[str, str]) -> int:
        logs = self.data_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        out = open(logs / f"{name}.log", "ab")
        proc = subprocess.Popen(
            [sys.executable, "-m", *args], stdout=out, stderr=subprocess.STDOUT, env=env,
            start_new_session=True, cwd=str(Path(__file__).resolve().parent.parent),
        )
        return proc.pid

    def up(self, spec: SystemSpec, timeout_s: float = 90.0) -> dict[str, Any]:
        """Start everything that is not running yet; returns the state."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        old = self.state() or {}
        if old and any(pid_alive(p) for p in old.get("pids", {}).values()):
            if health(old["port"]):
                _say(f"already running (data dir {self.data_dir})")
                return old
            _say("a previous system is half-running; stopping it first")
            self.down()
        busy = [(what, port) for what, port in
                 [("router (--port)", spec.port)] +
                 [(f"storage node n{i} (--storage-port)", spec.storage_base_port + i)
                  for i in range(1, spec.storage_nodes + 1)] +
                 [(f"{name}'s metrics (--metrics-port)", p) for name, p in spec.metrics_ports().items()]
                 if _port_busy(port)]
        if busy:
            raise RuntimeError("ports already in use: " + ", ".join(f"{p} for the {w}" for w, p in busy)
                               + "; stop what holds them or choose other ports")
        clash = _overlapping_ports(spec)
        if clash:
            raise RuntimeError(f"port {clash[0]} would serve both the {clash[1]} and the {clash[2]}; "
                               "choose ports that do not overlap (--port, --storage-port, --kafka-port, "
                               "--metrics-port)")
        bootstrap = spec.bootstrap
        kafka_managed = bootstrap is None
        if bootstrap is None:
            kafka = LocalKafka(self.data_dir / "kafka", brokers=spec.brokers, base_port=spec.kafka_base_port,
                               racks=[zone_of(i, spec.zones) for i in range(spec.brokers)])
            kafka.ensure_jars()
            _say(f"starting Kafka ({spec.brokers} broker{'s' if spec.brokers > 1 else ''})")
            kafka.start(timeout_s=max(60.0, timeout_s))
            bootstrap = kafka.bootstrap_servers
        key_path = systemkey.ensure(self.data_dir)
        master = systemkey.load(key_path)
        settings = Settings(bootstrap=bootstrap, namespace=spec.namespace, region=spec.region)
        key_id, new_key = credentials.run(credentials.ensure_admin_key(
            settings, master, self.credentials_path, f"http://127.0.0.1:{spec.port}"))
        if new_key:
            _say(f"created the administrator key {key_id}; it is in {self.credentials_path}")
        env = dict(os.environ)
        env.update({"KAFKA_BOOTSTRAP_SERVERS": bootstrap, "DYNAMOLOG_NAMESPACE": spec.namespace,
                    "DYNAMOLOG_REGION": spec.region, "PYTHONUNBUFFERED": "1",
                    systemkey.ENV: str(key_path)})
        env.setdefault("DYNAMOLOG_DATA_DIR", str(self.data_dir))  # the default backup store is DATA/backups
        if kafka_managed:
            env.setdefault("DYNAMOLOG_ELECTION_SESSION_MS", str(ELECTION_SESSION_MS_LOCAL))
        env.update(spec.extra_env)
        pids: dict[str, int] = {}
        commands: dict[str, list[str]] = {}
        storage_ports: dict[str, int] = {}
        state: dict[str, Any] = {"data_dir": str(self.data_dir), "port": spec.port, "bootstrap": bootstrap,
                 "namespace": spec.namespace, "region": spec.region, "kafka_managed": kafka_managed,
                 "pids": pids, "storage_ports": storage_ports, "commands": commands, "auth": spec.auth,
                 "zones": {}, "metrics_ports": spec.metrics_ports(), "broker_zones": [zone_of(i, spec.zones) for i in range(spec.brokers)]
                 if kafka_managed else [], "restarts": {}, "env": {
                     k: env[k] for k in ("KAFKA_BOOTSTRAP_SERVERS", "DYNAMOLOG_NAMESPACE", "DYNAMOLOG_REGION",
                                         systemkey.ENV, "DYNAMOLOG_ELECTION_SESSION_MS") if k in env
                 } | dict(spec.extra_env)}
        for i in range(1, spec.storage_nodes + 1):
            node = f"n{i}"
            port = spec.storage_base_port + i
            zone = zone_of(i - 1, spec.zones)
            cmd = ["services.storage", "--node-id", node, "--data-dir", str(self.data_dir / "storage" / node),
                   "--port", str(port), "--zone", zone]
            state["zones"][node] = zone
            cmd += _metrics_args(spec, f"storage-{node}")
            state["commands"][f"storage-{node}"] = cmd
            pids[f"storage-{node}"] = self._spawn(f"storage-{node}", cmd, env)
            state["storage_ports"][node] = port
        for service in SINGLETONS:
            for k in range(1, SINGLETON_PROCESSES + 1):
                name = service if k == 1 else f"{service}-{k}"
                cmd = [f"services.{service}", *_metrics_args(spec, name)]
                state["commands"][name] = cmd
                pids[name] = self._spawn(name, cmd, env)
        for service in REPLICATION_SERVICES if spec.replication else ():
            cmd = [f"services.{service}", *_metrics_args(spec, service)]
            state["commands"][service] = cmd
            pids[service] = self._spawn(service, cmd, env)
        self._write(state)
        # the router places partitions on registered nodes, so let the nodes register first
        time.sleep(0.5)
        cmd = ["services.router", "--port", str(spec.port), "--initial-partitions", str(spec.initial_partitions)]
        if spec.router_zone is not None:
            cmd += ["--zone", spec.router_zone]
        if not spec.auth:
            cmd.append("--no-auth")
        cmd += _metrics_args(spec, "router")
        state["commands"]["router"] = cmd
        pids["router"] = self._spawn("router", cmd, env)
        self._write(state)
        deadline = time.monotonic() + timeout_s
        internal = systemkey.internal_rpc_key(master)
        while time.monotonic() < deadline:
            dead = [n for n, p in pids.items() if not pid_alive(p)]
            if dead:
                raise RuntimeError(f"{', '.join(dead)} stopped during start; see {self.data_dir / 'logs'}")
            if health(spec.port) and all(_storage_ready(port, internal) for port in storage_ports.values()):
                if spec.supervise:
                    self.start_supervisor()
                return self.state() or state
            time.sleep(0.2)
        raise TimeoutError(f"the router did not answer on port {spec.port} within {timeout_s:.0f} s; "
                           f"see {self.data_dir / 'logs' / 'router.log'}")

    def _write(self, state: dict[str, Any]) -> None:
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2))
        tmp.replace(self.state_path)

    def start_supervisor(self) -> int:
        """Leave ``python -m dynamolog.supervisor`` running for this system (``down`` stops it)."""
        logs = self.data_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        out = open(logs / "supervisor.log", "ab")
        proc = subprocess.Popen(
            [sys.executable, "-m", "dynamolog.supervisor", "--data-dir", str(self.data_dir)], stdout=out,
            stderr=subprocess.STDOUT, start_new_session=True, cwd=str(Path(__file__).resolve().parent.parent),
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and (self.state() or {}).get("supervisor") != proc.pid:
            time.sleep(0.05)  # it records itself in system.json when it starts watching
        return proc.pid

    def stop_supervisor(self) -> None:
        """Stop the supervisor (unless it is this process), so that nothing restarts what stops next."""
        pid = (self.state() or {}).get("supervisor")
        if pid and pid != os.getpid():
            _stop_pid(pid)

    def stop_service(self, name: str) -> None:
        state = self.state() or {}
        pid = state.get("pids", {}).get(name)
        if pid:
            _stop_pid(pid)

    def start_service(self, name: str, extra_env: dict[str, str] | None = None,
                      module: list[str] | None = None) -> int:
        """Start one service again with the command it was first started with (and, for fault
        tests, extra environment variables, or ``module`` = [another module, its own arguments]
        run with the service's arguments after them)."""
        state = self.state()
        if state is None:
            raise RuntimeError(f"no system in {self.data_dir}")
        env = dict(os.environ)
        env.update(state["env"])
        env.update(extra_env or {})
        env["PYTHONUNBUFFERED"] = "1"
        command = state["commands"][name]
        pid = self._spawn(name, [*module, *command[1:]] if module else command, env)
        state["pids"][name] = pid
        self._write(state)
        return pid

    def kill_service(self, name: str) -> None:
        """SIGKILL one service (for fault tests)."""
        state = self.state() or {}
        pid = state.get("pids", {}).get(name)
        if pid and pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
            while pid_alive(pid):
                time.sleep(0.02)

    def down(self) -> None:
        """Stop the supervisor, the router, the storage nodes, the auto-admins, the indexers and
        (if this system started it) Kafka."""
        self.stop_supervisor()
        state = self.state() or {}
        pids = state.get("pids", {})
        if "router" in pids:  # the router first: no new requests
            _stop_pid(pids["router"])
        # the rest at once: stopped one by one, each active singleton would hand over to its
        # standby just before that one stops too
        _stop_pids([p for n, p in pids.items() if n != "router"])
        if state.get("kafka_managed", True) and (self.data_dir / "kafka").exists():
            LocalKafka.from_data_dir(self.data_dir / "kafka").stop()
        if state:
            state["pids"] = {}
            state.pop("supervisor", None)
            self._write(state)
