"""services/router/capacity.py: DynamoDB's capacity arithmetic and the ConsumedCapacity shapes
every operation answers (single items, Query/Scan, batches, transactions) (no broker)."""

from __future__ import annotations

import pytest

from services.router import capacity


@pytest.mark.parametrize("size,units", [(0, 1.0), (1, 1.0), (1024, 1.0), (1025, 2.0), (4096, 4.0), (400 * 1024, 400.0)])
def test_write_unit_is_1_kb_rounded_up_at_least_one(size: int, units: float) -> None:
    assert capacity.write_units(size) == units
    assert capacity.write_units(size, transactional=True) == 2 * units


@pytest.mark.parametrize("size,units", [(0, 1.0), (4096, 1.0), (4097, 2.0), (3 * 4096 + 1, 4.0)])
def test_read_unit_is_4_kb_halved_when_eventually_consistent(size: int, units: float) -> None:
    assert capacity.read_units(size, consistent=True) == units
    assert capacity.read_units(size, consistent=False) == units / 2
    assert capacity.read_units(size, consistent=False, transactional=True) == 2 * units


def test_single_table_shapes() -> None:
    assert capacity.single("NONE", "t", 3.0, "Write") == {}
    assert capacity.single("TOTAL", "t", 3.0, "Write") == {
        "ConsumedCapacity": {"TableName": "t", "CapacityUnits": 3.0, "WriteCapacityUnits": 3.0}}
    assert capacity.single("INDEXES", "t", 0.5, "Read") == {
        "ConsumedCapacity": {"TableName": "t", "CapacityUnits": 0.5, "ReadCapacityUnits": 0.5,
                             "Table": {"CapacityUnits": 0.5, "ReadCapacityUnits": 0.5}}}


def test_per_table_shapes() -> None:
    units = {"a": 2.0, "b": 1.0}
    assert capacity.per_table("NONE", units, None) == {}
    assert capacity.per_table("TOTAL", units, None) == {
        "ConsumedCapacity": [{"TableName": "a", "CapacityUnits": 2.0}, {"TableName": "b", "CapacityUnits": 1.0}]}
    assert capacity.per_table("INDEXES", {"a": 4.0}, "Write") == {
        "ConsumedCapacity": [{"TableName": "a", "CapacityUnits": 4.0, "WriteCapacityUnits": 4.0,
                              "Table": {"CapacityUnits": 4.0, "WriteCapacityUnits": 4.0}}]}
