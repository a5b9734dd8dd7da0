"""The client address a request counts against (staff login lockouts).

The peer address is the client's, unless the peer is a trusted reverse proxy: one on the same
host (loopback), or one whose address lies in ``EVOTE_TRUSTED_PROXIES`` (a proxy on another
machine).  Then the client is the right-most ``X-Forwarded-For`` entry that is not itself a
trusted proxy, as the proxies appended it.  A trusted peer without that header has no address
to count against, so a proxy that does not send it never gets every user locked out at once.
"""
from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from aiohttp import web

_MAX_FORWARDED_ENTRIES = 20

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_trusted_proxies(text: str) -> tuple[Network, ...]:
    """``EVOTE_TRUSTED_PROXIES``: a comma-separated list of addresses and CIDR networks
    (``10.0.0.5, 192.0.2.0/24, 2001:db8::/64``); a bad entry raises ``ValueError`` naming it."""
    networks = []
    for entry in text.split(","):
        entry = entry.strip()
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ValueError(f"not an address or CIDR network: {entry!r}") from None
    return tuple(networks)


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    # an IPv4 peer seen through an IPv6 socket (::ffff:10.0.0.5) is that IPv4 address
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _is_trusted_proxy(address: ipaddress.IPv4Address | ipaddress.IPv6Address,
                      trusted: Iterable[Network]) -> bool:
    return address.is_loopback or any(address.version == net.version and address in net for net in trusted)


def client_address(request: web.Request, trusted_proxies: Iterable[Network] = ()) -> str | None:
    trusted = tuple(trusted_proxies)
    peer = request.remote
    if not peer:
        return None
    peer_address = _address(peer)
    if peer_address is None:
        return peer[:64]
    if not _is_trusted_proxy(peer_address, trusted):
        return str(peer_address)
    forwarded = request.headers.get("X-Forwarded-For", "")
    for entry in reversed(forwarded.split(",")[-_MAX_FORWARDED_ENTRIES:]):
        address = _address(entry)
        if address is not None and not _is_trusted_proxy(address, trusted):
            return str(address)
    return None
