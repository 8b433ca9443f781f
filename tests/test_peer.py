"""The client address behind rate limits, from grpc's peer string and x-forwarded-for."""

from __future__ import annotations

import pytest

from foothills_rpc.interceptors.peer import client_address

PROXY = frozenset({"10.0.0.2", "10.0.0.3"})


@pytest.mark.parametrize(("peer", "forwarded", "trusted", "expected"), [
    ("ipv4:203.0.113.7:50000", [], frozenset(), "203.0.113.7"),
    ("ipv6:[::1]:50000", [], frozenset(), "::1"),
    ("ipv6:%5B2001:db8:0::1%5D:443", [], frozenset(), "2001:db8::1"),  # percent-encoded, normalised
    ("unix:/run/foothills.sock", ["203.0.113.7"], frozenset(), "unix:/run/foothills.sock"),
    # An untrusted peer's header is ignored, whatever it says.
    ("ipv4:203.0.113.7:1", ["198.51.100.1"], PROXY, "203.0.113.7"),
    # Behind one trusted proxy: the entry it appended, not the client's own forged one to its left.
    ("ipv4:10.0.0.2:1", ["198.51.100.1, 203.0.113.7"], PROXY, "203.0.113.7"),
    # Two trusted proxies in a row, the header split over two metadata values.
    ("ipv4:10.0.0.2:1", ["203.0.113.7", "10.0.0.3"], PROXY, "203.0.113.7"),
    # Garbage where an address should be: stop at the last trusted hop.
    ("ipv4:10.0.0.2:1", ["203.0.113.7, not-an-address"], PROXY, "10.0.0.2"),
    ("ipv4:10.0.0.2:1", ["10.0.0.3"], PROXY, "10.0.0.3"),  # only proxies: the farthest one
    ("ipv4:10.0.0.2:1", [], PROXY, "10.0.0.2"),
    ("ipv4:not-an-ip:1", [], frozenset(), "ipv4:not-an-ip:1"),
])
def test_client_address(peer: str, forwarded: list[str], trusted: frozenset[str], expected: str) -> None:
    assert client_address(peer, forwarded, trusted) == expected
