"""Where webhooks may be sent: only `https://` to public addresses (server-side request forgery guard).

A URL is checked when it is registered and its host's addresses again at every delivery, and the
delivery connects to an address that passed the check (not to a second look-up of the name), so a name
that later resolves to an internal address (DNS rebinding) is refused too. Plain `ipaddress` and
`socket.getaddrinfo` do this; no wrapper is needed around httpx.
"""

from __future__ import annotations

import ipaddress
import socket

import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Checked in this order, so that the reason given is the most specific one.
_FORBIDDEN = (
    ("is_unspecified", "unspecified"),
    ("is_loopback", "loopback"),
    ("is_link_local", "link-local"),
    ("is_multicast", "multicast"),
    ("is_reserved", "reserved"),
    ("is_private", "private"),
)


class AddressRefused(ValueError):
    """A webhook URL or address that may not be called; the message says why."""


def forbidden_reason(address: IPAddress) -> str | None:
    """Why `address` may not receive webhooks (e.g. "loopback"), or None when it is a public address."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    for attribute, reason in _FORBIDDEN:
        if getattr(address, attribute):
            return reason
    if not address.is_global:
        return "non-public"
    return None


def _a(reason: str) -> str:
    return ("an " if reason[0] in "aeiou" else "a ") + reason


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def check_url(url: str, *, allow_private: bool) -> str:
    """The URL, normalised, if it may be registered; `AddressRefused` saying what to fix otherwise.

    A host name that does not resolve now is accepted (it is resolved again at every delivery); one that
    resolves to a refused address is not.
    """
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError) as exc:
        raise AddressRefused(f"not a valid URL: {exc}") from None
    schemes = ("https", "http") if allow_private else ("https",)
    if parsed.scheme not in schemes:
        raise AddressRefused(
            "must start with https://"
            + (" or http://" if allow_private else "")
            + (f" (not {parsed.scheme}://)" if parsed.scheme else "")
        )
    if not parsed.host:
        raise AddressRefused("must name a host")
    if parsed.userinfo:
        raise AddressRefused("must not contain a user name or password; authenticate with the signature")
    if not allow_private:
        literal = _literal(parsed.host)
        if literal is not None:
            reason = forbidden_reason(literal)
            if reason:
                raise AddressRefused(
                    f"host {parsed.host} is {_a(reason)} address; only public addresses receive webhooks"
                )
        else:
            try:
                resolve(parsed.host, parsed.port or 443, allow_private=False)
            except AddressRefused as exc:
                if "does not resolve" not in str(exc):
                    raise
    return str(parsed)


def resolve(host: str, port: int, *, allow_private: bool) -> list[IPAddress]:
    """The addresses of `host`, all of them allowed; `AddressRefused` if it does not resolve or if any of
    them is refused (one internal address among public ones is enough to refuse the name)."""
    literal = _literal(host)
    if literal is not None:
        addresses = [literal]
    else:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise AddressRefused(f"{host} does not resolve ({exc})") from None
        addresses = list(dict.fromkeys(ipaddress.ip_address(info[4][0].split("%", 1)[0]) for info in infos))
        if not addresses:
            raise AddressRefused(f"{host} does not resolve")
    if not allow_private:
        for address in addresses:
            reason = forbidden_reason(address)
            if reason:
                raise AddressRefused(f"host {host} resolves to {address}, {_a(reason)} address")
    return addresses
