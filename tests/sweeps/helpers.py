"""Reading stores back in tests: the rows that count, and every (key, mode) pair."""

from __future__ import annotations

from insitu.sweeps.store import Store

# A small selftest sweep: 4 grid points x 3 seeds, one trial per chunk.
SMALL_SELFTEST_SPEC = """
name = "s"
experiment = "selftest"
seeds = 3
[fixed]
curve_len = 2
[grid]
x = [0.0, 1.0, 2.0, 3.0]
[ray]
chunk_seconds = 0.001
"""

# Columns that legitimately differ between runs of the same trials.
VOLATILE_COLUMNS = ("launch_id", "elapsed_s")


def stored_rows(store_dir) -> list[dict]:
    """The rows that count in a store, without volatile columns, sorted by key and mode."""
    table = Store(store_dir).latest_rows()
    rows = [{k: v for k, v in row.items() if k not in VOLATILE_COLUMNS}
            for row in table.to_pylist()]
    return sorted(rows, key=lambda r: (r["key"], r["mode"] or ""))


def all_keys(store_dir) -> list[str]:
    """Every (key, mode) pair of every part, duplicates included."""
    table = Store(store_dir).read_parts(["key", "mode"])
    return sorted(zip(table.column("key").to_pylist(), table.column("mode").to_pylist()),
                  key=lambda km: (km[0], km[1] or ""))
