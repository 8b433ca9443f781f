#!/usr/bin/env python3
"""Holds the protos to what the server says, both ways: every ErrorInfo reason the test suite saw an
RPC answer is documented for that RPC, and every reason the protos document is one the suite saw.

    uv run python scripts/check_reasons.py OBSERVED.json

OBSERVED.json is what the tests record (tests/reasons.py; scripts/test sets FOOTHILLS_REASONS_OUT):
rows of (RPC, status code, ErrorInfo reason), and rows of (RPC, "FIELD_VIOLATION", reason) for the
`BadRequest` field violations a refusal carried.

- An answered reason counts as documented for an RPC when its comment, its service's comment, or
  AuthService's comment (whose last part documents what every RPC of every service may answer)
  names it, or the comment of an RPC its own comment refers to ("Errors: as CreateBooking, ...").
- Each reason in an RPC's own "Errors:" paragraph must have been seen on that RPC (as its ErrorInfo
  reason or a field violation's), and each reason of the every-RPC paragraph on some RPC: a reason
  the suite never provokes is unreachable or untested, and either way the contract is not proven.

Exit status 1 on any difference, each listed.
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
EVERY_RPC_PART = "What every RPC of every Foothills service may answer"
# gRPC's code names are not reasons (INVALID_ARGUMENT is both: the reason of every field violation).
STATUS_CODES = {"OK", "CANCELLED", "UNKNOWN", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",
                "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
                "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"}
# Documented as unreachable on purpose: the default-deny of an RPC missing from the policy table.
UNREACHABLE = {"NO_POLICY"}
FIELD_VIOLATION = "FIELD_VIOLATION"


def _comment_above(lines: list[str], index: int) -> str:
    above = []
    while index > 0 and lines[index - 1].strip().startswith("//"):
        index -= 1
        above.insert(0, lines[index].strip().removeprefix("//"))
    return " ".join(above)


def _enum_values() -> set[str]:
    """The protos' enum value names: a comment may name one (CONFLICT_RESOLUTION_MOVE_TO_NEAREST) without
    it being a reason."""
    return {name for path in PROTOS.rglob("*.proto")
            for name in re.findall(r"^\s+([A-Z][A-Z0-9_]*) = \d+;", path.read_text(), re.MULTILINE)}


NOT_REASONS = STATUS_CODES | _enum_values()


def _reasons(text: str) -> set[str]:
    return set(TOKEN.findall(text)) - NOT_REASONS


class Contract:
    """What the protos' comments document."""

    def __init__(self) -> None:
        self.per_rpc: dict[str, set[str]] = {}  # every reason named in the RPC's comment
        self.errors: dict[str, set[str]] = {}  # the reasons of its own "Errors:" paragraph
        self.per_service: dict[str, set[str]] = {}
        self.every_rpc: set[str] = set()
        mentions: dict[str, set[str]] = {}
        for path in sorted(PROTOS.rglob("*.proto")):
            lines = path.read_text().splitlines()
            package = next(line.split()[1].rstrip(";") for line in lines if line.startswith("package "))
            service = ""
            for index, line in enumerate(lines):
                if match := re.match(r"service (\w+) \{", line):
                    service = f"{package}.{match.group(1)}"
                    comment = _comment_above(lines, index)
                    self.per_service[service] = _reasons(comment)
                    if service == EVERY_RPC:
                        self.every_rpc = _reasons(comment.split(EVERY_RPC_PART, 1)[1]) - UNREACHABLE
                elif (match := re.match(r"\s+rpc (\w+)\(", line)) and service:
                    method = f"/{service}/{match.group(1)}"
                    comment = _comment_above(lines, index)
                    self.per_rpc[method] = _reasons(comment)
                    self.errors[method] = _reasons(comment.split("Errors:", 1)[1]) if "Errors:" in comment else set()
                    mentions[method] = set(re.findall(r"\b[A-Z][a-z]+[A-Z]\w*\b", comment))
        # "Errors: as CreateBooking, plus ..." and "any reason of BookingService.RescheduleBooking": an RPC
        # whose comment names another RPC documents that RPC's reasons too (followed to the end).
        by_name = {method.rsplit("/", 1)[1]: method for method in self.per_rpc}
        self.referred: dict[str, set[str]] = defaultdict(set)
        for method in self.per_rpc:
            todo, done = [method], {method}
            while todo:
                for name in mentions[todo.pop()]:
                    if (other := by_name.get(name)) and other not in done:
                        done.add(other)
                        todo.append(other)
                        self.referred[method] |= self.per_rpc[other]

    def allows(self, method: str) -> set[str]:
        service = method.split("/")[1]
        return (self.per_rpc[method] | self.per_service[service] | self.per_service[EVERY_RPC]
                | self.referred[method])


def differences(contract: Contract, observed: list[list[str]]) -> list[str]:
    answered: dict[str, set[str]] = defaultdict(set)  # ErrorInfo reasons
    seen: dict[str, set[str]] = defaultdict(set)  # those and field violations' reasons
    for method, code, reason in observed:
        seen[method].add(reason)
        if code != FIELD_VIOLATION:
            answered[method].add(reason)
    found = []
    for method, reasons in sorted(answered.items()):
        if method in contract.per_rpc:  # health and reflection are not ours to document
            found += [f"undocumented: {method}: {r}" for r in sorted(reasons - contract.allows(method))]
    for method, reasons in sorted(contract.errors.items()):
        found += [f"documented, never seen: {method}: {r}" for r in sorted(reasons - seen[method])]
    anywhere = set().union(*seen.values())
    found += [f"documented for every RPC, never seen: {r}" for r in sorted(contract.every_rpc - anywhere)]
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("observed", type=Path)
    args = parser.parse_args()
    observed = json.loads(args.observed.read_text())
    found = differences(Contract(), observed)
    for line in found:
        print(line)
    pairs = {(method, reason) for method, code, reason in observed if code != FIELD_VIOLATION}
    print(f"check_reasons: {len(pairs)} (RPC, reason) pairs seen over {len({m for m, _ in pairs})} RPCs; "
          f"{len(found)} differences")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
