"""Seconds per test file from a pytest JUnit report, for the order in which `make test` hands out files.

    .venv/bin/python -m pytest -q -n 3 --dist loadfile --no-loadscope-reorder --junitxml=/tmp/junit.xml
    .venv/bin/python scripts/test_durations.py /tmp/junit.xml > tests/durations.json

tests/conftest.py collects the files longest first (pytest-xdist's --dist loadfile
--no-loadscope-reorder then starts them in that order), so no long file starts last while the other
processes have nothing left to do. The figures only order the files: a file missing from the table
still runs (after the listed ones, or first if it holds tests marked slow), and stale figures cost
time, never a test.
"""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from collections import defaultdict


def file_seconds(junit_path: str) -> dict[str, float]:
    """tests/<room>/test_x.py -> the summed time of its test cases (setup, call and teardown)."""
    totals: dict[str, float] = defaultdict(float)
    for case in ET.parse(junit_path).getroot().iter("testcase"):
        module = case.get("classname", "").split(".")
        parts = []
        for part in module:  # "tests.pipeline.test_seal" or "tests.pipeline.test_seal.TestClass"
            parts.append(part)
            if part.startswith("test_"):
                break
        if parts:
            totals["/".join(parts) + ".py"] += float(case.get("time") or 0)
    return {name: round(seconds, 1) for name, seconds in sorted(totals.items(), key=lambda kv: -kv[1])}


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    json.dump(file_seconds(argv[0]), sys.stdout, indent=1)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
