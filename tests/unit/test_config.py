"""Settings in one place (dynamolog/config.py): the documented table, the code's environment
reads and every ``--help`` agree with the ``Settings`` dataclass, so none can drift."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from dynamolog import config, faults
from dynamolog.config import Settings, SettingsError

ROOT = Path(__file__).resolve().parents[2]
ENVS = {d.env for d in config.documented()}
#: read by the test suite only (docs/settings.md, "Test suite")
TEST_ENVS = {"DYNAMOLOG_TEST_BROKERS", "DYNAMOLOG_TEST_KAFKA_PORT", "DYNAMOLOG_TEST_KAFKA", "DYNAMOLOG_FUZZ_SCALE", "DYNAMOLOG_FUZZ_REPORT"}


def sources(*dirs: str) -> list[Path]:
    return [p for d in dirs for p in (ROOT / d).rglob("*.py")]


def test_the_documented_table_is_the_dataclass() -> None:
    # docs/settings.md holds the table generated from the dataclass, unchanged
    text = (ROOT / "docs" / "settings.md").read_text()
    table = text.split("-->\n", 1)[1].split("<!-- end of settings table -->", 1)[0]
    assert table == config.markdown_table(), "regenerate it: python -m dynamolog.config"


def test_every_variable_named_anywhere_is_a_setting_or_a_test_variable() -> None:
    # a variable in code, tests or docs that is not in the dataclass would be undocumented or stale
    files = sources("dynamolog", "services", "bench", "tests") + list((ROOT / "docs").rglob("*.md")) + [
        ROOT / "README.md", ROOT / "docker-compose.yml"]
    named = {m for f in files for m in re.findall(r"\bDYNAMOLOG_[A-Z0-9_]+", f.read_text())}
    assert named - ENVS - TEST_ENVS == set()
    assert not TEST_ENVS & ENVS


def test_no_production_module_reads_a_setting_from_the_environment() -> None:
    # settings are read once, in dynamolog/config.py; modules take them from a Settings object
    reads = re.compile(r"(environ|getenv)\b[^\n]*(DYNAMOLOG_|KAFKA_BOOTSTRAP_SERVERS)")
    offenders = [str(p.relative_to(ROOT)) for p in sources("dynamolog", "services", "bench")
                 if p.name != "config.py" and reads.search(p.read_text())]
    assert offenders == []


def test_environment_and_overrides() -> None:
    s = Settings.from_env({"DYNAMOLOG_LEASE_MS": "300", "DYNAMOLOG_DEAD_AFTER_S": "5", "DYNAMOLOG_REGION": "eu-west-1",
                           "KAFKA_BOOTSTRAP_SERVERS": ""}, dead_after_s=2.0, namespace=None)
    assert (s.lease_ms, s.dead_after_s, s.region, s.bootstrap, s.namespace) == (
        300, 2.0, "eu-west-1", "127.0.0.1:9092", "dyn")
    assert Settings.from_env({}) == Settings()


@pytest.mark.parametrize("env,value", [("DYNAMOLOG_LEASE_MS", "2.5"), ("DYNAMOLOG_TTL_SWEEP_S", "soon"),
                                       ("DYNAMOLOG_DEAD_AFTER_S", "-1")])
def test_a_bad_value_names_its_variable(env: str, value: str) -> None:
    with pytest.raises(SettingsError, match=env):
        Settings.from_env({env: value})


def test_an_unknown_override_is_refused() -> None:
    with pytest.raises(TypeError, match="leese_ms"):
        Settings.from_env({}, leese_ms=1)


@pytest.mark.parametrize("module", ["services.router", "services.storage", "services.admin", "services.indexer"])
def test_every_service_help_lists_every_setting(module: str, capsys: pytest.CaptureFixture[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    main = __import__(f"{module}.__main__", fromlist=["main"]).main
    monkeypatch.setattr(sys, "argv", [module, "--help"])
    with pytest.raises(SystemExit) as done:
        main()
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert {env for env in ENVS if f"{env}=" in out} == ENVS


def test_dynamolog_up_help_lists_every_setting(capsys: pytest.CaptureFixture[str]) -> None:
    from dynamolog.cli import build_parser

    with pytest.raises(SystemExit):
        build_parser().parse_args(["up", "--help"])
    out = capsys.readouterr().out
    assert {env for env in ENVS if f"{env}=" in out} == ENVS


def test_fault_points_do_nothing_unless_armed() -> None:
    faults.point("txn.after_decision")  # nothing armed: no effect
    hits: list[object] = []
    try:
        faults.arm("txn.after_finish", hits.append)
        faults.point("txn.after_finish", 0)
        assert hits == [0]
        with pytest.raises(ValueError, match="no fault point"):
            faults.arm("txn.after_finsh", hits.append)
    finally:
        faults.disarm_all()
    faults.point("txn.after_finish", 1)
    assert hits == [0]
