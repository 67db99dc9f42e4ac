#!/usr/bin/env python3
"""Prints the line coverage of a test run per crate and in total, from `cargo llvm-cov report
--json --summary-only`, and exits 1 when the total is below the floor.

    scripts/coverage-summary.py target/coverage.json FLOOR
"""

import json
import os
import sys


def crate_of(path: str) -> str:
    """The workspace folder a source file belongs to (crates/platform, services/order, tests …)."""
    parts = path.split("/")
    if parts[0] in ("crates", "services") and len(parts) > 1:
        return f"{parts[0]}/{parts[1]}"
    return parts[0]


def main() -> int:
    report, floor = sys.argv[1], float(sys.argv[2])
    with open(report, encoding="utf-8") as f:
        data = json.load(f)["data"][0]
    root = os.getcwd() + "/"
    crates: dict[str, list[int]] = {}
    for entry in data["files"]:
        name = entry["filename"].removeprefix(root)
        lines = entry["summary"]["lines"]
        counts = crates.setdefault(crate_of(name), [0, 0])
        counts[0] += lines["covered"]
        counts[1] += lines["count"]
    print(f"{'crate':<22} {'lines':>8} {'covered':>8} {'cover':>7}")
    for crate, (covered, count) in sorted(crates.items()):
        print(f"{crate:<22} {count:>8} {covered:>8} {100 * covered / max(count, 1):>6.1f}%")
    total = data["totals"]["lines"]
    percent = 100 * total["covered"] / max(total["count"], 1)
    print(f"{'total':<22} {total['count']:>8} {total['covered']:>8} {percent:>6.1f}%")
    if percent + 1e-9 < floor:
        print(f"coverage {percent:.1f}% is below the floor of {floor:.1f}% (.ci/coverage-floor)")
        return 1
    print(f"coverage {percent:.1f}% (floor {floor:.1f}%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
