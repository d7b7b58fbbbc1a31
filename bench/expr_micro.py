#!/usr/bin/env python3
"""Micro-benchmark of the expression engine (dynamolog.expr), in-process, no server.

Times the steps one request goes through for a typical FilterExpression and a typical
UpdateExpression:

  parse (cold)    tokenize + parse the text (the parser's own LRU cache bypassed);
  parse (cached)  parse_condition / parse_update as the server calls them: a repeated
                  expression text is an LRU-cache hit;
  resolve         Resolver: substitute #names / :values, type checks, overlap checks, finish();
  evaluate        evaluate(filter, item) for one item / apply_update(update, item) for one item;
  total           cached parse + resolve + evaluate/apply, i.e. what one request with one item
                  costs; "total, cold parse" the same with a parse that misses the cache.

Each figure is timeit-style: the loop count is chosen so that one sample lasts about
--sample-ms, the sample is repeated --repeat times, and the median of the samples (per call)
is printed, in microseconds and as calls per second of one core. Use --json FILE to keep the
figures.

  .venv/bin/python bench/expr_micro.py
  .venv/bin/python bench/expr_micro.py --repeat 15 --sample-ms 400
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
import timeit
from collections.abc import Callable
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from dynamolog.expr import Resolver, apply_update, evaluate, parse_condition, parse_update

FILTER = "#s = :active AND price BETWEEN :lo AND :hi AND attribute_exists(tags) AND size(#n) > :z"
FILTER_NAMES = {"#s": "status", "#n": "name"}
FILTER_VALUES: dict[str, Any] = {":active": {"S": "active"}, ":lo": {"N": "10"}, ":hi": {"N": "100"},
                                 ":z": {"N": "0"}}
FILTER_ITEM: dict[str, Any] = {
    "pk": {"S": "user#00042"}, "sk": {"S": "order#2026-11-27#0001"}, "status": {"S": "active"},
    "price": {"N": "42.5"}, "tags": {"SS": ["red", "sale"]}, "name": {"S": "blue widget"},
    "qty": {"N": "3"}, "note": {"S": "x" * 60},
}

UPDATE = "SET a = a + :one, b = list_append(b, :l), #m.x = if_not_exists(#m.x, :z) REMOVE c ADD s :set"
UPDATE_NAMES = {"#m": "m"}
UPDATE_VALUES: dict[str, Any] = {":one": {"N": "1"}, ":l": {"L": [{"S": "new"}]}, ":z": {"N": "0"},
                                 ":set": {"SS": ["t3"]}}
UPDATE_ITEM: dict[str, Any] = {
    "pk": {"S": "user#00042"}, "a": {"N": "41"}, "b": {"L": [{"S": "one"}, {"S": "two"}]},
    "m": {"M": {"y": {"N": "1"}}}, "c": {"S": "drop me"}, "s": {"SS": ["t1", "t2"]},
    "note": {"S": "x" * 60},
}

# the parser's functions are functools.lru_cache wrappers; __wrapped__ is the uncached parser
_parse_condition_cold: Callable[..., Any] = getattr(parse_condition, "__wrapped__", parse_condition)
_parse_update_cold: Callable[..., Any] = getattr(parse_update, "__wrapped__", parse_update)


def measure(fn: Callable[[], object], repeat: int, sample_s: float) -> float:
    """Median seconds per call of ``fn`` over ``repeat`` samples of about ``sample_s`` each."""
    timer = timeit.Timer(fn)
    number, took = timer.autorange()  # smallest 1, 2, 5, 10, ... count lasting >= 0.2 s
    number = max(1, int(number * sample_s / max(took, 1e-9)))
    return statistics.median(t / number for t in timer.repeat(repeat=repeat, number=number))


def filter_steps() -> dict[str, Callable[[], object]]:
    parsed = parse_condition(FILTER, "FilterExpression")

    def resolve() -> object:
        r = Resolver(FILTER_NAMES, FILTER_VALUES)
        c = r.condition(parsed, "FilterExpression")
        r.finish()
        return c

    resolved = resolve()
    assert evaluate(resolved, FILTER_ITEM) is True  # type: ignore[arg-type]

    def total(parse: Callable[..., Any]) -> Callable[[], object]:
        def run() -> object:
            r = Resolver(FILTER_NAMES, FILTER_VALUES)
            c = r.condition(parse(FILTER, "FilterExpression"), "FilterExpression")
            r.finish()
            return evaluate(c, FILTER_ITEM)
        return run

    return {
        "parse (cold)": lambda: _parse_condition_cold(FILTER, "FilterExpression"),
        "parse (cached)": lambda: parse_condition(FILTER, "FilterExpression"),
        "resolve": resolve,
        "evaluate, 1 item": lambda: evaluate(resolved, FILTER_ITEM),  # type: ignore[arg-type]
        "total per request": total(parse_condition),
        "total, cold parse": total(_parse_condition_cold),
    }


def update_steps() -> dict[str, Callable[[], object]]:
    parsed = parse_update(UPDATE)

    def resolve() -> object:
        r = Resolver(UPDATE_NAMES, UPDATE_VALUES)
        u = r.update(parsed)
        r.finish()
        return u

    resolved = resolve()
    out = apply_update(resolved, UPDATE_ITEM)  # type: ignore[arg-type]
    assert out["a"] == {"N": "42"} and "c" not in out and out["m"]["M"]["x"] == {"N": "0"}, out

    def total(parse: Callable[..., Any]) -> Callable[[], object]:
        def run() -> object:
            r = Resolver(UPDATE_NAMES, UPDATE_VALUES)
            u = r.update(parse(UPDATE))
            r.finish()
            return apply_update(u, UPDATE_ITEM)
        return run

    return {
        "parse (cold)": lambda: _parse_update_cold(UPDATE),
        "parse (cached)": lambda: parse_update(UPDATE),
        "resolve": resolve,
        "apply_update, 1 item": lambda: apply_update(resolved, UPDATE_ITEM),  # type: ignore[arg-type]
        "total per request": total(parse_update),
        "total, cold parse": total(_parse_update_cold),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=7, help="samples per figure; the median is shown (default 7)")
    ap.add_argument("--sample-ms", type=float, default=200,
                    help="approximate length of one sample in ms (default 200)")
    ap.add_argument("--only", choices=["filter", "update"], help="time one expression only")
    ap.add_argument("--json", metavar="FILE", help="also write the figures as JSON to FILE")
    a = ap.parse_args()

    print(f"# expr_micro  {time.strftime('%Y-%m-%d %H:%M:%S %Z')}  Python {platform.python_version()}  "
          f"repeat={a.repeat} sample={a.sample_ms:g} ms")
    results: dict[str, dict[str, float]] = {}
    groups = [("filter", FILTER, filter_steps), ("update", UPDATE, update_steps)]
    for label, text, steps in groups:
        if a.only and a.only != label:
            continue
        print(f"\n{label}: {text}\n")
        print("| step | µs per call | calls/s |\n|---|---:|---:|")
        results[label] = {}
        for step, fn in steps().items():
            sec = measure(fn, a.repeat, a.sample_ms / 1000)
            results[label][step] = sec * 1e6
            print(f"| {step} | {sec * 1e6:,.2f} | {1 / sec:,.0f} |", flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"filter": FILTER, "update": UPDATE, "us_per_call": results}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
