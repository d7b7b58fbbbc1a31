"""The hot modules compiled to C with mypyc, used only while they match their sources.

The request path of the router and the storage node is Python that the interpreter spends most of
its time executing (on-CPU profiles: about four fifths of the router's CPU in libpython during a
GetItem load; decision 0059). mypyc compiles the same, already strictly typed, modules to C
extension modules: the source stays the only definition, and without a build everything runs
interpreted, as before.

Where the compiled modules live, and when they are used
- ``dynamolog native build`` (:mod:`dynamolog.native_cli`) compiles :data:`MODULES` into ``build/native/lib`` beside
  the package (``scripts/bootstrap`` does it; about 70 s on two cores) and writes
  ``build/native/manifest.json``: each module's SHA-256 and the interpreter's extension suffix.
- Each package holding a compiled module calls :func:`use` from its ``__init__``, which puts the
  build's directory for that package first on the package's ``__path__`` -- but only if every
  compiled module's source still has the hash it was compiled from, and the interpreter is the
  one it was compiled for. One edited source turns the whole build off (mypyc's modules call each
  other directly, so a mix would run two versions of a module); the services log why at start,
  and the next ``scripts/bootstrap`` (or ``build``) compiles again. A checkout never runs code
  that differs from its sources.
- ``DYNAMOLOG_NATIVE=0`` runs everything interpreted even with a valid build (for comparing the
  two, and for debugging with tools that need Python frames).

``dynamolog native status`` says which modules run compiled and, if none, why.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import sysconfig
from pathlib import Path

#: The modules compiled, as paths from the repository's root: the router's and the storage node's
#: per-request code. A module here must type-check under ``mypy --strict`` (scripts/lint), and its
#: tests must pass compiled (CI builds first). Not here: package ``__init__`` files (they call
#: :func:`use`), this module, and code whose attributes tests replace at run time.
MODULES: tuple[str, ...] = (
    "dynamolog/attrs.py",
    "dynamolog/auth/sigv4.py",
    "dynamolog/catalog.py",
    "dynamolog/codec.py",
    "dynamolog/expr/ast.py",
    "dynamolog/expr/evaluate.py",
    "dynamolog/expr/keycond.py",
    "dynamolog/expr/parser.py",
    "dynamolog/expr/resolve.py",
    "dynamolog/expr/tokens.py",
    "dynamolog/expr/values.py",
    "dynamolog/indexes.py",
    "dynamolog/keys.py",
    "dynamolog/routing.py",
    "dynamolog/rpc.py",
    "dynamolog/units.py",
    "services/router/app.py",
    "services/router/auth.py",
    "services/router/http.py",
    "services/router/items.py",
    "services/router/legacy.py",
    "services/router/policies.py",
    "services/router/validate.py",
    "services/router/requests/batch.py",
    "services/router/requests/common.py",
    "services/router/requests/expressions.py",
    "services/router/requests/get.py",
    "services/router/requests/keys.py",
    "services/router/requests/members.py",
    "services/router/requests/query.py",
    "services/router/requests/ranges.py",
    "services/router/requests/scan.py",
    "services/router/requests/writes.py",
    "services/storage/capacity.py",
    "services/storage/follower.py",
    "services/storage/leader.py",
    "services/storage/metering.py",
    "services/storage/node.py",
    "services/storage/reads.py",
    "services/storage/replica.py",
    "services/storage/writes.py",
)

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build" / "native"
LIB = BUILD / "lib"
MANIFEST = BUILD / "manifest.json"
ENV = "DYNAMOLOG_NATIVE"

_state: tuple[bool, str] | None = None


def module_name(path: str) -> str:
    return path.removesuffix(".py").replace("/", ".")


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def check(root: Path = ROOT, manifest_file: Path = MANIFEST, *, env: bool = True) -> tuple[bool, str]:
    """(in use, why): whether a process started now runs the compiled modules of the build whose
    manifest is ``manifest_file``, for the sources under ``root``; ``env`` False: whether the
    build matches, whatever ``DYNAMOLOG_NATIVE`` says."""
    if env and os.environ.get(ENV, "1").strip() == "0":
        return False, f"{ENV}=0: every module runs interpreted"
    try:
        manifest = json.loads(manifest_file.read_text())
    except FileNotFoundError:
        return False, "no build (`dynamolog native build` compiles the hot modules)"
    except (OSError, ValueError) as e:
        return False, f"unreadable {manifest_file}: {e}; build again"
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    if manifest.get("ext_suffix") != suffix:
        return False, f"built for {manifest.get('ext_suffix')}, this interpreter loads {suffix}; build again"
    built: dict[str, str] = manifest.get("modules", {})
    if sorted(built) != sorted(module_name(p) for p in MODULES):
        return False, "the build compiled another list of modules; build again"
    for path in MODULES:
        try:
            if digest(root / path) != built[module_name(path)]:
                return False, f"{path} changed since it was compiled; build again (scripts/bootstrap)"
        except OSError as e:
            return False, f"{path}: {e}"
    return True, f"{len(MODULES)} modules compiled (build/native, {manifest.get('built', '?')})"


def state() -> tuple[bool, str]:
    """(in use, why), decided once per process."""
    global _state
    if _state is None:
        _state = check()
        if _state[0] and str(LIB) not in sys.path:
            sys.path.append(str(LIB))  # mypyc's shared library, a top-level module
    return _state


def use(package: str, path: list[str]) -> None:
    """Called by a package's ``__init__`` with its ``__name__`` and ``__path__``: the package's
    compiled modules are found before their sources while the build matches them."""
    if not state()[0]:
        return
    where = LIB.joinpath(*package.split("."))
    if where.is_dir() and str(where) not in path:
        path.insert(0, str(where))


def compiled(module: str) -> bool:
    """Whether the loaded module ``module`` (a name in ``sys.modules``) is the compiled one."""
    mod = sys.modules.get(module)
    return mod is not None and str(getattr(mod, "__file__", "")).endswith(str(sysconfig.get_config_var("EXT_SUFFIX")))
