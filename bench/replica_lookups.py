"""Point lookups in a replica's RocksDB, with the replica's options and with RocksDB's defaults.

Writes ``--items`` items of 1 KB (and a small stamp each) ``--versions`` times over, so that the
memtable has flushed and several table files hold each key, then times ``--lookups`` gets of
present keys and as many of absent ones, alternating the two stores for ``--rounds`` rounds.
The replica's options (``_options`` in services/storage/replica.py) add whole-key Bloom filters;
an absent key is what every PutItem of a new item looks up twice (its item and its stamp).

    python bench/replica_lookups.py            # about a minute; prints µs per get
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

from rocksdict import Options, Rdict, WriteBatch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from services.storage.replica import _options


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", type=int, default=60_000, help="distinct keys (default 60,000)")
    ap.add_argument("--versions", type=int, default=4, help="times each key is written (default 4)")
    ap.add_argument("--lookups", type=int, default=100_000, help="gets of each kind per round (default 100,000)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds, the stores taken in turn (default 3)")
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="replica-lookups-"))
    try:
        plain = Options(raw_mode=True)
        plain.create_if_missing(True)
        stores = {"RocksDB defaults": Rdict(str(work / "plain"), options=plain),
                  "replica options": Rdict(str(work / "replica"), options=_options())}
        value = os.urandom(1000)
        for db in stores.values():
            for _ in range(a.versions):
                for start in range(0, a.items, 500):
                    wb = WriteBatch(raw_mode=True)
                    for j in range(start, min(start + 500, a.items)):
                        wb.put(b"d" + j.to_bytes(8, "big"), value)
                        wb.put(b"s" + j.to_bytes(8, "big"), b'{"t":1,"r":"here"}')
                    db.write(wb)
        rnd = random.Random(1)
        present = [b"d" + rnd.randrange(a.items).to_bytes(8, "big") for _ in range(a.lookups)]
        absent = [b"d" + rnd.randrange(a.items, 10 * a.items).to_bytes(8, "big") for _ in range(a.lookups)]
        for r in range(1, a.rounds + 1):
            for name, db in stores.items():
                for kind, keys in (("present", present), ("absent", absent)):
                    t0 = time.perf_counter()
                    for k in keys:
                        db.get(k)
                    us = (time.perf_counter() - t0) / len(keys) * 1e6
                    print(f"round {r}  {name:<16}  {kind:<7}  {us:5.2f} µs per get", flush=True)
        for db in stores.values():
            db.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
