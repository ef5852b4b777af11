"""Who may use an ``auv review`` server: the host it binds, its token, and the check every request passes.

The server binds 127.0.0.1 unless told otherwise. Any other host needs a token
(``--token``, or one generated here and printed in the address). With a token,
every request (the page, its scripts, its websocket) must carry it: the printed
address holds it (``?token=...``), and the page's first answer sets it as a
cookie (HttpOnly, SameSite=Strict, named after the token so that servers side
by side keep theirs) for the requests that follow; a wrong or missing token gets
403. A server without a token (on the loopback only) still refuses a request
whose ``Host`` is not a loopback name (a web page that rebinds its own domain to
127.0.0.1), and, like every server here, a websocket opened from another origin
(a page of another site in the reviewer's browser).

Example:
    >>> policy = AccessPolicy.for_host("127.0.0.1")
    >>> policy.token, policy.refusal(host="127.0.0.1:8080", origin=None, offered=None)
    (None, None)
    >>> policy.refusal(host="evil.example:8080", origin=None, offered=None)
    'this server answers requests for the loopback only (127.0.0.1, localhost), not evil.example'
    >>> shared = AccessPolicy.for_host("0.0.0.0", token="s3cret")
    >>> shared.refusal(host="10.0.0.5:8080", origin=None, offered="wrong")
    'a wrong or missing token: open the address auv review printed (it ends in ?token=...)'
    >>> shared.refusal(host="10.0.0.5:8080", origin="http://10.0.0.5:8080", offered="s3cret") is None
    True
    >>> shared.address(8080)
    'http://0.0.0.0:8080/?token=s3cret'
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import urlsplit

#: Host names that reach the loopback.
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` serves this machine only.

    Example:
        >>> is_loopback("127.0.0.1"), is_loopback("localhost"), is_loopback("0.0.0.0"), is_loopback("10.1.2.3")
        (True, True, False, False)
    """
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _host_name(host_header: str) -> str:
    """``127.0.0.1:8080`` -> ``127.0.0.1``; ``[::1]:8080`` -> ``::1``."""
    return urlsplit(f"//{host_header}").hostname or host_header


@dataclass(frozen=True)
class AccessPolicy:
    """The host a server binds and the token its requests must carry (None: loopback only, no token)."""

    host: str
    token: str | None = None

    @classmethod
    def for_host(cls, host: str, token: str | None = None) -> AccessPolicy:
        """The policy of a server on ``host``: ``token`` as given, one generated where the host is not the loopback."""
        if token is not None and not token.strip():
            raise ValueError("the token is empty: give a non-empty --token, or none to have one generated")
        if token is None and not is_loopback(host):
            token = secrets.token_urlsafe(24)
        return cls(host, token)

    @property
    def cookie_name(self) -> str:
        assert self.token is not None
        return "auv_review_" + hashlib.sha256(self.token.encode("utf-8")).hexdigest()[:12]

    def address(self, port: int) -> str:
        """The address to open (with the token, where there is one)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{port}/" + (f"?token={self.token}" if self.token else "")

    def refusal(self, host: str, origin: str | None, offered: str | None) -> str | None:
        """Why a request is refused (None: it is let through).

        Args:
            host: its ``Host`` header; origin: its ``Origin`` header (browsers send it with websockets);
            offered: the token it carries (query or cookie).
        """
        if origin and urlsplit(origin).netloc != host:
            return f"a request from another site ({origin}) is not answered"
        if self.token is None:
            if not is_loopback(_host_name(host)):
                return f"this server answers requests for the loopback only (127.0.0.1, localhost), not {_host_name(host)}"
            return None
        if offered is None or not hmac.compare_digest(offered.encode("utf-8"), self.token.encode("utf-8")):
            return "a wrong or missing token: open the address auv review printed (it ends in ?token=...)"
        return None

    def middleware(self) -> Callable[..., Any]:
        """An aiohttp middleware that answers 403 to what :meth:`refusal` refuses, and sets the token's cookie."""
        from aiohttp import web

        @web.middleware
        async def check(request: web.Request, handler: Callable[..., Any]) -> web.StreamResponse:
            query = request.query.get("token")
            offered = query if query is not None else (request.cookies.get(self.cookie_name) if self.token else None)
            problem = self.refusal(request.host, request.headers.get("Origin"), offered)
            if problem is not None:
                return web.Response(status=403, text=f"auv review: refused: {problem}\n")
            response = await handler(request)
            if self.token and query is not None and not response.prepared:
                response.set_cookie(self.cookie_name, self.token, httponly=True, samesite="Strict", path="/")
            return response

        return check
