"""A dirty sales lake to try a lake job on (tests, benchmarks, the demo).

    lake = write_dirty_lake("/tmp/lake", records=10_000, files=4, bad_share=0.02)
    job = LakeJob(lake.pattern, SALES_SCHEMA, sales_rules(), "/tmp/warehouse/sales",
                  partition_by=["order_date"])
    result = job.run()
    assert (result.good_rows, result.bad_rows) == (lake.good, lake.bad)

Each bad line is one of ``BAD_KINDS`` (malformed JSON, a string or float where an integer
belongs, single quotes, two objects on a line, a duplicate key, an unparseable timestamp, a
negative quantity, a missing customer, an unknown region), and ``DirtyLake.reasons`` counts
the reason a lake job must give each.
"""

from __future__ import annotations

import gzip
import os
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from headrace.spark import reasons as R

SALES_SCHEMA = {"order_id": "int64", "customer_id": "int64", "order_date": "date", "region": "string",
                "product": "string", "quantity": "int64", "unit_price": "float64", "paid": "bool",
                "at": "timestamp"}
REGIONS = ["North", "South", "East", "West", "Central"]


def sales_rules() -> list[Any]:
    """The lake's row-level rules: a customer, a quantity of at least 0, a known region."""
    from headrace.quality import expect

    return [expect.column_values_to_not_be_null("customer_id"),
            expect.column_values_to_be_between("quantity", min_value=0),
            expect.column_values_to_be_in_set("region", REGIONS)]


def _rule(e_type: str, column: str) -> str:
    names = {"not_null": "column_values_to_not_be_null", "between": "column_values_to_be_between",
             "in_set": "column_values_to_be_in_set"}
    return R.rule_failed(f"{names[e_type]}({column})", [column])


BAD_KINDS: dict[str, str] = {
    "truncated": R.INVALID_JSON,
    "single_quotes": R.INVALID_JSON,
    "two_objects": R.INVALID_JSON,
    "trailing_text": R.INVALID_JSON,
    "quantity_text": R.wrong_kind("quantity", "string", "int64"),
    "quantity_float": R.wrong_kind("quantity", "float", "int64"),
    "duplicate_key": R.duplicate_key("order_id"),
    "bad_timestamp": R.bad_timestamp("at"),
    "negative_quantity": _rule("between", "quantity"),
    "missing_customer": _rule("not_null", "customer_id"),
    "unknown_region": _rule("in_set", "region"),
}


@dataclass
class DirtyLake:
    """What was written: the files, and how many lines a lake job must find good and bad."""

    folder: str
    files: list[str]
    rows: int = 0
    good: int = 0
    bad: int = 0
    bad_bytes: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    missing: Counter[str] = field(default_factory=Counter)

    @property
    def pattern(self) -> str:
        return os.path.join(self.folder, "*.ndjson*")


def _good(i: int, rng: random.Random) -> str:
    qty = rng.randint(0, 20)
    price = rng.randint(500, 50_000) / 100
    day = 1 + i % 28
    product = "" if i % 50 == 7 else f', "product": "SKU-{1000 + i % 9000}"'  # sometimes absent
    price_text = str(int(price)) if i % 97 == 3 else repr(price)  # an integer price widens to float
    return (f'{{"order_id": {i}, "customer_id": {rng.randint(1, 50_000)}, "order_date": "2024-{1 + i % 12:02d}-'
            f'{day:02d}", "region": "{REGIONS[i % 5]}"{product}, "quantity": {qty}, "unit_price": {price_text}, '
            f'"paid": {"true" if i % 3 else "false"}, "at": "2024-{1 + i % 12:02d}-{day:02d}T{i % 24:02d}:'
            f'{i % 60:02d}:{(i * 7) % 60:02d}Z"}}')


def _bad(kind: str, i: int, rng: random.Random) -> str:
    line = _good(i, rng)
    if kind == "truncated":
        return line[: len(line) // 2]
    if kind == "single_quotes":
        return line.replace('"', "'")
    if kind == "two_objects":
        return line + line
    if kind == "trailing_text":
        return line + " ok"
    if kind == "quantity_text":
        return line.replace('"quantity": ', '"quantity": "abc", "q": ', 1)
    if kind == "quantity_float":
        return line.replace('"quantity": ', '"quantity": 2.5, "q": ', 1)
    if kind == "duplicate_key":
        return line.replace('{"order_id": ', '{"order_id": 1, "order_id": ', 1)
    if kind == "bad_timestamp":
        return line.rsplit('"at": ', 1)[0] + '"at": "yesterday"}'
    if kind == "negative_quantity":
        return line.replace('"quantity": ', '"quantity": -1, "q": ', 1)
    if kind == "missing_customer":
        return line.replace('"customer_id": ', '"client": ', 1)
    if kind == "unknown_region":
        return line.replace('"region": "', '"region": "Mars', 1)
    raise ValueError(f"unknown bad kind {kind!r}")


def write_dirty_lake(folder: str, records: int = 10_000, files: int = 4, bad_share: float = 0.02,
                     seed: int = 7, gzip_files: bool = False) -> DirtyLake:
    """Write ``records`` lines over ``files`` NDJSON files, ``bad_share`` of them bad (every kind in turn)."""
    os.makedirs(folder, exist_ok=True)
    rng = random.Random(seed)
    kinds = list(BAD_KINDS)
    lake = DirtyLake(folder, [])
    per_file = -(-records // files) if files else 0
    every = round(1 / bad_share) if bad_share > 0 else 0
    for n in range(files):
        name = os.path.join(folder, f"part-{n:04d}.ndjson" + (".gz" if gzip_files else ""))
        lines = []
        for i in range(n * per_file, min((n + 1) * per_file, records)):
            if every and i % every == every // 2:
                kind = kinds[(i // every) % len(kinds)]
                line = _bad(kind, i, rng)
                lake.bad += 1
                lake.bad_bytes += len(line.encode())
                lake.reasons[BAD_KINDS[kind]] += 1
            else:
                line = _good(i, rng)
                lake.good += 1
                if i % 50 == 7:
                    lake.missing["product"] += 1
            lines.append(line)
        data = ("\n".join(lines) + "\n").encode() if lines else b""
        opener: Any = gzip.open if gzip_files else open
        with opener(name, "wb") as fh:
            fh.write(data)
        lake.files.append(name)
        lake.rows += len(lines)
    return lake
