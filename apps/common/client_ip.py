"""The client's own address, also behind reverse proxies (settings.TRUSTED_PROXIES).

A request that reaches us from a trusted proxy carries the addresses it passed through in
X-Forwarded-For, each hop appending the address it was reached from. Reading that header
from the right and skipping every trusted proxy gives the first address no proxy of ours
vouches for: the client. A request from anywhere else is judged by REMOTE_ADDR alone, so
a client cannot choose its address by sending the header itself.

Written here rather than taken from django-ipware: its trusted-proxy rule matches address
prefixes anywhere in the header instead of walking the chain from our side, and the lockout,
the throttles and the audit log must all agree on one answer.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.http import HttpRequest

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=8)
def _networks(proxies: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(proxy.strip(), strict=False) for proxy in proxies if proxy.strip())


def _address(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    value = value.strip()
    if value.startswith("[") and "]" in value:  # [v6]:port
        value = value[1 : value.index("]")]
    elif value.count(":") == 1:  # v4:port
        value = value.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def client_ip(request: HttpRequest, *args: Any) -> str | None:
    """The client's address as a string, or None when the request carries none we can read.

    (Extra positional arguments are accepted because django-axes calls it with its own.)
    """
    trusted = _networks(tuple(settings.TRUSTED_PROXIES))
    peer = _address(str(request.META.get("REMOTE_ADDR") or ""))
    if peer is None:
        return None
    if not any(peer in network for network in trusted):
        return str(peer)
    hops = [hop for value in request.headers.get("X-Forwarded-For", "").split(",") if (hop := value.strip())]
    for hop in reversed(hops):
        address = _address(hop)
        if address is None:
            # Garbage where an address should be: the proxies vouch for nothing further left.
            break
        if not any(address in network for network in trusted):
            return str(address)
        peer = address
    # Every hop is one of our proxies (or the header is missing): the left-most we know of.
    return str(peer)
