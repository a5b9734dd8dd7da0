"""The client address a request counts against (staff login lockouts).

The peer address is the client's, unless the peer is a trusted reverse proxy on the same host
(loopback): then the client is the right-most ``X-Forwarded-For`` entry that is not itself a
proxy, as the proxy appended it.  A loopback peer without that header has no address to count
against, so a local proxy that does not send it never gets every user locked out at once.
"""
from __future__ import annotations

import ipaddress

from aiohttp import web

_MAX_FORWARDED_ENTRIES = 20


def _is_trusted_proxy(address: str) -> bool:
    try:
        return ipaddress.ip_address(address.strip()).is_loopback
    except ValueError:
        return False


def _normalised(address: str) -> str | None:
    try:
        return str(ipaddress.ip_address(address.strip()))
    except ValueError:
        return None


def client_address(request: web.Request) -> str | None:
    peer = request.remote
    if not peer:
        return None
    if not _is_trusted_proxy(peer):
        return _normalised(peer) or peer[:64]
    forwarded = request.headers.get("X-Forwarded-For", "")
    for entry in reversed(forwarded.split(",")[-_MAX_FORWARDED_ENTRIES:]):
        address = _normalised(entry)
        if address is not None and not _is_trusted_proxy(address):
            return address
    return None
