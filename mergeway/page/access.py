"""Who may read the environments page: nobody (404), anyone, users with a password, or an auth proxy's users.

The page tells an outsider which repositories deploy where and who merged what, so it is off
unless the operator chose a mode (:attr:`mergeway.config.Settings.page_access`):

- ``public``: anyone who reaches the web service.
- ``users``: HTTP basic auth against ``MERGEWAY_PAGE_USERS`` (werkzeug's scrypt or pbkdf2 hashes).
  Checking such a hash takes tens of milliseconds on purpose, and the page refreshes itself, so a
  credential that passed is remembered (as a SHA-256 of the header, never the password) for
  :data:`REMEMBER_SECONDS`; an unknown user is checked against a dummy hash so timing does not
  tell which users exist.
- ``proxy``: an auth proxy in front (oauth2-proxy, a mesh's ext-auth) signs people in and sets
  ``MERGEWAY_PAGE_PROXY_HEADER`` (``X-Forwarded-User``). The header is believed only on a
  connection from ``MERGEWAY_PAGE_PROXY_FROM``, since anyone can send it to the service directly.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
import threading
import time
from typing import NamedTuple, Protocol

from werkzeug.security import check_password_hash, generate_password_hash

from mergeway.config import Settings

#: Seconds a checked basic-auth header is remembered (the page refreshes every 30 s by default).
REMEMBER_SECONDS = 300.0
#: Remembered headers at most (each one a user's current password).
REMEMBER_MAX = 256
#: The realm browsers show in their password prompt.
REALM = "Mergeway environments"


class Headers(Protocol):
    """What the check reads of a request's headers (Werkzeug's ``Headers``, a plain dict in tests)."""

    def get(self, key: str, /) -> str | None: ...


class Decision(NamedTuple):
    """What to answer: ``status`` 200 goes on (``user`` is who, when known); 404, 401 or 403 stop."""

    status: int
    user: str = ""


def make_hash(password: str) -> str:
    """A hash for ``MERGEWAY_PAGE_USERS`` (``mergeway page-hash`` prints it)."""
    return generate_password_hash(password, method="scrypt")


class Gate:
    """The access check of one web process, built once from its settings."""

    def __init__(self, settings: Settings) -> None:
        self.mode = settings.page_access
        self.users = dict(settings.page_users)
        self.header = settings.page_proxy_header
        self.proxies = tuple(ipaddress.ip_network(n, strict=False) for n in settings.page_proxy_from)
        self._dummy = make_hash("mergeway-dummy-password") if self.mode == "users" else ""
        self._known: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def check(self, headers: Headers, remote_addr: str | None) -> Decision:
        if self.mode == "public":
            return Decision(200)
        if self.mode == "users":
            return self._basic(headers.get("Authorization") or "")
        if self.mode == "proxy":
            return self._proxy(headers, remote_addr or "")
        return Decision(404)

    def _proxy(self, headers: Headers, remote_addr: str) -> Decision:
        try:
            address = ipaddress.ip_address(remote_addr)
        except ValueError:
            return Decision(403)
        if not any(address in network for network in self.proxies):
            return Decision(403)
        user = (headers.get(self.header) or "").strip()
        return Decision(200, user) if user else Decision(403)

    def _basic(self, authorization: str) -> Decision:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "basic" or not token:
            return Decision(401)
        digest = hashlib.sha256(authorization.encode()).hexdigest()
        now = time.monotonic()
        with self._lock:
            known = self._known.get(digest)
        if known is not None and known[1] > now:
            return Decision(200, known[0])
        try:
            user, sep, password = base64.b64decode(token, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return Decision(401)
        hashed = self.users.get(user) if sep else None
        ok = check_password_hash(hashed or self._dummy, password) and hashed is not None
        if not ok:
            return Decision(401)
        with self._lock:
            if len(self._known) >= REMEMBER_MAX:
                self._known.clear()
            self._known[digest] = (user, now + REMEMBER_SECONDS)
        return Decision(200, user)
