"""The compiled modules (dynamolog/native.py, decision 0059): used exactly when the build matches
the sources, and never mixed with interpreted copies of themselves.

scripts/test runs scripts/bootstrap first, which compiles; so the suite runs the compiled modules,
and this file checks that they are the ones loaded. Each check that decides what a process loads
runs in a fresh interpreter, as a service starts."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from dynamolog import native

_LOADED = """
import importlib, json, sys
from dynamolog import native
names = [native.module_name(p) for p in native.MODULES]
for n in names:
    importlib.import_module(n)
print(json.dumps({"state": native.state(), "compiled": {n: native.compiled(n) for n in names},
                  "files": {n: sys.modules[n].__file__ for n in names}}))
"""


def _loaded(**env: str) -> dict[str, object]:
    out = subprocess.run([sys.executable, "-c", _LOADED], env={**os.environ, **env}, capture_output=True,
                         text=True, check=True, cwd=native.ROOT)
    result: dict[str, object] = json.loads(out.stdout)
    return result


def test_a_process_runs_every_listed_module_compiled_when_the_build_matches() -> None:
    ok, why = native.check(env=False)  # scripts/bootstrap builds even while DYNAMOLOG_NATIVE=0
    assert ok, f"scripts/bootstrap should have compiled the modules: {why}"
    got = _loaded(DYNAMOLOG_NATIVE="1")
    assert got["state"] == [True, why]
    compiled = got["compiled"]
    assert isinstance(compiled, dict)
    assert [n for n, c in compiled.items() if not c] == []  # no module of the group runs interpreted
    files = got["files"]
    assert isinstance(files, dict)
    assert all(str(native.LIB) in f for f in files.values())


def test_native_off_runs_every_module_from_its_source() -> None:
    got = _loaded(DYNAMOLOG_NATIVE="0")
    assert got["state"] == [False, "DYNAMOLOG_NATIVE=0: every module runs interpreted"]
    files = got["files"]
    assert isinstance(files, dict)
    assert {n: f.endswith(".py") for n, f in files.items()} == {n: True for n in files}


def _copy_sources(tmp: Path) -> Path:
    for path in native.MODULES:
        (tmp / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(native.ROOT / path, tmp / path)
    shutil.copy(native.MANIFEST, tmp / "manifest.json")
    return tmp / "manifest.json"


def test_one_edited_source_turns_the_whole_build_off(tmp_path: Path) -> None:
    manifest = _copy_sources(tmp_path)
    assert native.check(tmp_path, manifest, env=False)[0]
    edited = tmp_path / "services/router/http.py"
    edited.write_text(edited.read_text() + "\n# an edit\n")
    assert native.check(tmp_path, manifest, env=False) == (
        False, "services/router/http.py changed since it was compiled; build again (scripts/bootstrap)")


def test_a_build_for_another_interpreter_or_module_list_is_not_used(tmp_path: Path) -> None:
    manifest = _copy_sources(tmp_path)
    built = json.loads(manifest.read_text())
    other = dict(built, ext_suffix=".cpython-312-x86_64-linux-gnu.so")
    manifest.write_text(json.dumps(other))
    ok, why = native.check(tmp_path, manifest, env=False)
    assert not ok and why.startswith("built for .cpython-312-x86_64-linux-gnu.so")
    fewer = dict(built, modules={k: v for k, v in list(built["modules"].items())[1:]})
    manifest.write_text(json.dumps(fewer))
    assert native.check(tmp_path, manifest, env=False) == (False, "the build compiled another list of modules; build again")
    assert native.check(tmp_path, tmp_path / "absent.json", env=False) == (
        False, "no build (`dynamolog native build` compiles the hot modules)")


def test_status_says_whether_the_build_is_in_use() -> None:
    out = subprocess.run([sys.executable, "-m", "dynamolog.cli", "native", "status"], capture_output=True, text=True,
                         check=True, env={**os.environ, "DYNAMOLOG_NATIVE": "0"})
    assert out.stdout.splitlines()[0] == "not in use: DYNAMOLOG_NATIVE=0: every module runs interpreted"
    assert "  services/router/http.py" in out.stdout.splitlines()
