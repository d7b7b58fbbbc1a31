"""``dynamolog native``: compile the hot modules with mypyc (:mod:`dynamolog.native`), or say whether
this checkout runs them compiled."""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import native
from .native import BUILD, ENV, LIB, MODULES, ROOT, digest, module_name


def build(*, quiet: bool = False) -> None:
    """Compile :data:`MODULES` into a fresh directory, then put it in place of the last build (a
    running process keeps the files it loaded)."""
    try:
        import mypyc  # noqa: F401
    except ImportError:
        raise SystemExit("dynamolog native: mypyc is not installed; pip install mypy (scripts/bootstrap does)") from None
    BUILD.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    hashes = {module_name(p): digest(ROOT / p) for p in MODULES}  # what is compiled, read before it is
    with tempfile.TemporaryDirectory(prefix="native-", dir=BUILD.parent) as tmp:
        work = Path(tmp)
        # mypyc writes the C (several files, compiled in parallel), setuptools compiles and links it
        script = (
            "import os, sys\n"
            "from setuptools import setup\n"
            "from mypyc.build import mypycify\n"
            "mods, c_dir, lib, temp = sys.argv[1].split(','), sys.argv[2], sys.argv[3], sys.argv[4]\n"
            "setup(name='dynamolog-native',\n"
            "      ext_modules=mypycify(mods, opt_level='3', multi_file=True, target_dir=c_dir),\n"
            "      script_args=['-q', 'build_ext', '--parallel', str(os.cpu_count() or 1),\n"
            "                   '--build-lib', lib, '--build-temp', temp])\n"
        )
        cmd = [sys.executable, "-c", script, ",".join(MODULES), str(work / "c"), str(work / "lib"), str(work / "temp")]
        if not quiet:
            print(f"[native] compiling {len(MODULES)} modules with mypyc ...", file=sys.stderr, flush=True)
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        if done.returncode != 0:
            sys.stderr.write(done.stdout[-4000:] + done.stderr[-4000:])
            raise SystemExit(f"dynamolog native: the build failed (exit {done.returncode}); the modules run "
                             "interpreted until it succeeds")
        manifest = {
            "ext_suffix": sysconfig.get_config_var("EXT_SUFFIX"),
            "built": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
            "modules": hashes,
        }
        staged = work / "native"
        staged.mkdir()
        shutil.move(str(work / "lib"), str(staged / "lib"))
        (staged / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
        old = work / "old"
        if BUILD.exists():
            BUILD.rename(old)
        staged.rename(BUILD)
    if not quiet:
        print(f"[native] {len(MODULES)} modules compiled in {time.monotonic() - started:.0f} s into {LIB}",
              file=sys.stderr)


EXAMPLES = f"""examples:
  dynamolog native build             compile now (about 70 s on two cores)
  dynamolog native build --if-stale  compile only if a compiled module's source changed (scripts/bootstrap)
  dynamolog native status            whether the compiled modules are in use, or why not
  {ENV}=0 dynamolog up      run every module interpreted, build or not
"""


def add_native_parser(sub: Any, data_dir_arg: Callable[[argparse.ArgumentParser], None]) -> None:
    del data_dir_arg  # the build belongs to the checkout, not to a data directory
    from .service import HelpFormatter

    p = sub.add_parser("native", help="compile the router's and storage node's hot modules with mypyc",
                       description="Compile the router's and the storage node's per-request modules to C with "
                       "mypyc (the same source; decision 0059), or say whether this checkout runs them compiled. "
                       "A build is used only while every compiled module's source is unchanged; after an edit "
                       "everything runs interpreted (the same code, slower) until the next build.",
                       formatter_class=HelpFormatter, epilog=EXAMPLES)
    native_sub = p.add_subparsers(dest="native_command", required=True)
    b = native_sub.add_parser("build", help="compile the modules into build/native")
    b.add_argument("--if-stale", action="store_true", help="do nothing if the build matches the sources")
    b.set_defaults(func=_cmd_build)
    s = native_sub.add_parser("status", help="whether the compiled modules are in use, and why not")
    s.set_defaults(func=_cmd_status)


def _cmd_build(args: argparse.Namespace) -> int:
    if args.if_stale and native.check(env=False)[0]:  # built even while DYNAMOLOG_NATIVE=0, for later use
        return 0
    build()
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    ok, why = native.check()
    print(("in use: " if ok else "not in use: ") + why)
    for path in MODULES:
        print(f"  {path}")
    return 0
