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


def _awaits_in_handlers(path: str) -> list[str]:
    """The try statements of a module's coroutines that await in a finally or except block."""
    import ast

    found = []
    for fn in ast.walk(ast.parse((native.ROOT / path).read_text())):
        if not isinstance(fn, ast.AsyncFunctionDef):
            continue
        for node in ast.walk(fn):
            if isinstance(node, ast.Try):
                blocks = node.finalbody + [s for h in node.handlers for s in h.body]
                if any(isinstance(x, ast.Await) for s in blocks for x in ast.walk(s)):
                    found.append(f"{path}:{node.lineno} ({fn.name})")
    return found


def test_no_compiled_coroutine_awaits_in_a_finally_or_except_block() -> None:
    """mypyc loses the exception being handled across such an await (dynamolog/aio.py): a
    storage node once died of it when a deleted table's partition failed to open."""
    found = [hit for path in native.MODULES for hit in _awaits_in_handlers(path)]
    assert found == [], f"use dynamolog.aio.closing / cleanup_on_error instead: {found}"


_HELPERS_CALLER = '''
import asyncio

from dynamolog.aio import cleanup_on_error, closing


class Boom(Exception):
    pass


class Thing:
    def __init__(self) -> None:
        self.closed = 0

    async def close(self) -> None:
        await asyncio.sleep(0)
        self.closed += 1

    async def fail(self) -> None:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        loop.call_soon(fut.set_exception, Boom("from a future"))
        await fut

    async def with_closing(self) -> None:
        await closing(self.fail(), self.close)

    async def with_cleanup(self) -> None:
        await cleanup_on_error(self.fail(), self.close)


async def outer(t: Thing, which: str) -> str:
    if which == "closing":
        await t.with_closing()
    else:
        await t.with_cleanup()
    return "returned"
'''

_HELPERS_DRIVER = '''
import asyncio, json
import caller

async def main():
    out = {}
    for which in ("closing", "cleanup"):
        raised = closed = 0
        for _ in range(2000):
            t = caller.Thing()
            task = asyncio.ensure_future(caller.outer(t, which))
            got = await asyncio.gather(*(asyncio.shield(task) for _ in range(3)), return_exceptions=True)
            raised += sum(isinstance(g, caller.Boom) for g in got)
            closed += t.closed
        out[which] = [raised, closed]
    out["compiled"] = caller.__file__.endswith(".so")
    print(json.dumps(out))

asyncio.run(main())
'''


def test_the_clean_up_helpers_keep_the_exception_in_compiled_callers(tmp_path: Path) -> None:
    """A module compiled for the test awaits a failing future through each helper, its task
    awaited by three waiters, 2,000 times: every waiter gets the exception and the clean-up runs
    once each time (a compiled ``finally: await`` returned normally here, and a compiled
    ``except: await ...; raise`` crashed the process)."""
    (tmp_path / "caller.py").write_text(_HELPERS_CALLER)
    env = {**os.environ, "MYPYPATH": str(native.ROOT), "PYTHONPATH": str(native.ROOT)}
    subprocess.run([sys.executable, "-m", "mypyc", "caller.py"], cwd=tmp_path, env=env, capture_output=True,
                   check=True, timeout=300)
    (tmp_path / "caller.py").unlink()  # only the compiled module is left to import
    out = subprocess.run([sys.executable, "-X", "dev", "-c", _HELPERS_DRIVER], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got == {"closing": [6000, 2000], "cleanup": [6000, 2000], "compiled": True}
