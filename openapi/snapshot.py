"""Compare (or rewrite) openapi/served.json, the checked-in snapshot of the schema voxloop serves.

`python -m openapi.snapshot --write` after an intended API change; the test suite fails while they differ, so a
change to the public contract is always a visible diff in review.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

SNAPSHOT = Path(__file__).with_name("served.json")


def served_schema() -> dict:
    from api.settings import Settings
    from voxloop.app import create_app

    return create_app(Settings()).openapi()


def render(schema: dict) -> str:
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--write", action="store_true", help="rewrite the snapshot")
    args = parser.parse_args()
    current = render(served_schema())
    if args.write:
        SNAPSHOT.write_text(current)
        print(f"wrote {SNAPSHOT}")
        return 0
    if SNAPSHOT.read_text() != current:
        print("served schema differs from openapi/served.json; run `make openapi`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
