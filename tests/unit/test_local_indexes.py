"""Local secondary indexes as a replica folds the log: entries and item-collection sizes.

Random histories of puts, updates, deletes and transaction commits are turned into log records
(with their old images, as the leader writes them), folded by ``record_mutations`` into a real
RocksDB replica in batches of random size, and the index entries and collection sizes are then
compared with ones computed from scratch out of the final items."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dynamolog.catalog import TableDefinition
from dynamolog.indexes import LocalIndexes, entry_key, local_space, project
from dynamolog.keys import encode_item_key, hash_prefix
from services.storage.follower import record_mutations
from services.storage.replica import Replica

TABLE = TableDefinition.from_record({
    "table_name": "t", "table_id": "id", "billing_mode": "PAY_PER_REQUEST", "read_capacity_units": 0,
    "write_capacity_units": 0, "status": "ACTIVE", "created_at_ms": 0, "partition_ids": ["p-0"],
    "key_schema": [{"attribute_name": "pk", "key_type": "HASH"}, {"attribute_name": "sk", "key_type": "RANGE"}],
    "attribute_definitions": [{"attribute_name": n, "attribute_type": t}
                              for n, t in (("pk", "S"), ("sk", "N"), ("ts", "N"), ("tag", "S"))],
    "local_indexes": [
        {"index_name": "byTs", "range_key": "ts", "projection_type": "ALL", "non_key_attributes": []},
        {"index_name": "byTag", "range_key": "tag", "projection_type": "INCLUDE", "non_key_attributes": ["note"]},
    ],
})

ops = st.lists(st.tuples(
    st.sampled_from(["PUT", "DELETE", "TXN_PUT", "TXN_DELETE"]),
    st.sampled_from(["a", "b"]), st.integers(0, 4),                       # pk, sk
    st.one_of(st.none(), st.integers(-5, 5)),                            # ts (None: absent)
    st.one_of(st.none(), st.sampled_from(["x", "y", "z"]), st.integers(0, 1)),  # tag, sometimes of the wrong type
    st.text(max_size=30),                                                # note
), max_size=60)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=ops, cuts=st.lists(st.integers(1, 8), min_size=1, max_size=20))
def test_folded_entries_and_sizes_equal_a_fresh_computation(tmp_path: Path, history: list[Any],
                                                            cuts: list[int]) -> None:
    lsi = LocalIndexes(TABLE)
    path = tmp_path / f"r{abs(hash((str(history), str(cuts))))}"
    replica = Replica(path)
    items: dict[bytes, dict[str, Any]] = {}
    records = []
    for op, pk, sk, ts, tag, note in history:
        key = encode_item_key({"S": pk}, {"N": str(sk)})
        old = items.get(key)
        new: dict[str, Any] | None = None
        if op in ("PUT", "TXN_PUT"):
            new = {"pk": {"S": pk}, "sk": {"N": str(sk)}, "note": {"S": note}}
            if ts is not None:
                new["ts"] = {"N": str(ts)}
            if tag is not None:
                new["tag"] = {"S": tag} if isinstance(tag, str) else {"N": str(tag)}
            items[key] = new
        else:
            items.pop(key, None)
        if op.startswith("TXN"):
            records.append({"op": "TXN_COMMIT", "key": key, "new_image": new, "old_image": old,
                            "transaction_id": "t" * 32, "txn_action": "PUT" if new is not None else "DELETE"})
        else:
            records.append({"op": "PUT" if new is not None else "DELETE", "key": key, "new_image": new,
                            "old_image": old})
    i = 0
    for n in cuts * (len(records) // max(1, sum(cuts)) + 1):  # batches of varying size, like fetches
        if i >= len(records):
            break
        batch = records[i:i + n]
        replica.apply_raw([m for r in batch for m in record_mutations(r, lsi)], i + len(batch), len(batch))
        i += len(batch)

    for index in lsi.indexes:
        want = {}
        for key, it in items.items():
            r = it.get(index.range_key)
            if r is not None and next(iter(r)) == lsi.types[index.range_key]:
                want[entry_key(it["pk"], r, key)] = project(index, it, lsi.table_keys)
        got = {k: orjson.loads(v) for k, v in replica.range(b"", None, space=local_space(index.index_name))}
        assert got == want, index.index_name
    for pk in ("a", "b"):
        size = sum(lsi.footprint(it) for it in items.values() if it["pk"] == {"S": pk})
        assert replica.counter(lsi.collection_key({"pk": {"S": pk}})) == size
        assert lsi.collection_key({"pk": {"S": pk}}).endswith(hash_prefix({"S": pk}))
    replica.destroy()
