#!/usr/bin/env python3
"""Holds the protos to what the server says: every ErrorInfo reason the test suite saw an RPC answer
must be documented for that RPC.

    uv run python scripts/check_reasons.py OBSERVED.json [--unobserved]

OBSERVED.json is what the tests record (tests/reasons.py; scripts/test sets FOOTHILLS_REASONS_OUT).
A reason counts as documented for an RPC when it appears in the RPC's comment, in its service's
comment, or in AuthService's comment, whose last part documents what every RPC of every service may
answer. With --unobserved it also lists documented reasons no test saw (an unreachable reason, or an
untested one). Exit status 1 on any undocumented reason.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import defaultdict
from pathlib import Path

PROTOS = Path(__file__).resolve().parent.parent / "protos"
TOKEN = re.compile(r"\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b|\b[A-Z]{5,}\b")
EVERY_RPC = "foothills.auth.v1.AuthService"  # its comment ends with what every RPC may answer


def _comment_above(lines: list[str], index: int) -> str:
    above = []
    while index > 0 and lines[index - 1].strip().startswith("//"):
        index -= 1
        above.insert(0, lines[index].strip().removeprefix("//"))
    return " ".join(above)


def documented() -> tuple[dict[str, set[str]], dict[str, set[str]], dict[str, set[str]]]:
    """(reasons per RPC path, reasons per service, the words of each RPC's comment) as the protos'
    comments name them."""
    per_rpc: dict[str, set[str]] = {}
    per_service: dict[str, set[str]] = {}
    mentions: dict[str, set[str]] = {}
    for path in sorted(PROTOS.rglob("*.proto")):
        lines = path.read_text().splitlines()
        package = next(line.split()[1].rstrip(";") for line in lines if line.startswith("package "))
        service = ""
        for index, line in enumerate(lines):
            if match := re.match(r"service (\w+) \{", line):
                service = f"{package}.{match.group(1)}"
                per_service[service] = set(TOKEN.findall(_comment_above(lines, index)))
            elif (match := re.match(r"\s+rpc (\w+)\(", line)) and service:
                comment = _comment_above(lines, index)
                per_rpc[f"/{service}/{match.group(1)}"] = set(TOKEN.findall(comment))
                mentions[f"/{service}/{match.group(1)}"] = set(re.findall(r"\b[A-Z][a-z]+[A-Z]\w*\b", comment))
    return per_rpc, per_service, mentions


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("observed", type=Path)
    parser.add_argument("--unobserved", action="store_true", help="also list documented reasons no test saw")
    args = parser.parse_args()
    per_rpc, per_service, mentions = documented()
    # "Errors: as CreateBooking, plus ..." and "any reason of BookingService.RescheduleBooking": an RPC
    # whose comment names another RPC documents that RPC's reasons too (followed to the end).
    by_name = {path.rsplit("/", 1)[1]: path for path in per_rpc}
    referred: dict[str, set[str]] = defaultdict(set)
    for method in per_rpc:
        todo, done = [method], {method}
        while todo:
            for name in mentions[todo.pop()]:
                if (other := by_name.get(name)) and other not in done:
                    done.add(other)
                    todo.append(other)
                    referred[method] |= per_rpc[other]
    seen: dict[str, set[str]] = defaultdict(set)
    for method, code, reason in json.loads(args.observed.read_text()):
        if code != "FIELD_VIOLATION":  # a BadRequest violation's reason, not an ErrorInfo reason
            seen[method].add(reason)
    missing = []
    for method, reasons in sorted(seen.items()):
        if method not in per_rpc:
            continue  # health and reflection: not ours to document
        service = method.split("/")[1]
        allowed = per_rpc[method] | per_service[service] | per_service[EVERY_RPC] | referred[method]
        missing += [f"{method}: {reason}" for reason in sorted(reasons - allowed)]
    for line in missing:
        print(f"undocumented: {line}")
    if args.unobserved:
        for method, reasons in sorted(per_rpc.items()):
            for reason in sorted(reasons - seen.get(method, set())):
                print(f"documented, never seen: {method}: {reason}")
    print(f"check_reasons: {sum(len(r) for r in seen.values())} (RPC, reason) pairs seen over {len(seen)} RPCs; "
          f"{len(missing)} undocumented")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
