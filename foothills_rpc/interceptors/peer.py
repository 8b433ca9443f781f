"""Who is on the other end of a call: the client's IP address, for limits kept per address."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from urllib.parse import unquote


def client_address(peer: str, forwarded_for: Iterable[str], trusted_proxies: frozenset[str]) -> str:
    """The address of `peer` (grpc's `context.peer()`); when that peer is a trusted proxy, the nearest
    address in the x-forwarded-for values that is not itself a trusted proxy (proxies append, so a
    client's own forged entries sit to the left and are never reached)."""
    address = _peer_host(peer)
    if address not in trusted_proxies:
        return address
    for entry in reversed(",".join(forwarded_for).split(",")):
        hop = _normalised(entry.strip())
        if hop is None:
            break  # garbage in the header: stop at the last proxy we trust
        if hop not in trusted_proxies:
            return hop
        address = hop
    return address


def _peer_host(peer: str) -> str:
    """'ipv4:10.0.0.1:5000' -> '10.0.0.1'; 'ipv6:[::1]:5000' -> '::1'; anything else as it came."""
    kind, _, rest = unquote(peer).partition(":")  # some gRPC versions percent-encode the brackets
    if kind == "ipv4":
        rest = rest.rpartition(":")[0]
    elif kind == "ipv6":
        rest = rest.rpartition(":")[0].strip("[]")
    else:
        return peer
    return _normalised(rest) or peer


def _normalised(text: str) -> str | None:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None
