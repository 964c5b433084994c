"""Pieces shared by the GitHub and GitLab API emulations: requests, errors, routing, pagination."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from tools.forgesim.state import SimApp, SimToken


class ApiError(Exception):
    """Answer with ``status`` and a JSON ``body`` (each API shapes its own bodies)."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.body = body
        self.headers = headers or {}


@dataclass
class Principal:
    """Who is calling: a user token, an installation token, or a GitHub App (JWT)."""

    token: SimToken | None = None
    app: SimApp | None = None

    @property
    def login(self) -> str | None:
        return self.token.login if self.token else None

    def describe(self) -> str:
        if self.app is not None:
            return f"app:{self.app.app_id}"
        if self.token is not None and self.token.installation_id is not None:
            return f"installation:{self.token.installation_id}"
        return f"user:{self.login}" if self.login else "anonymous"


@dataclass
class ApiRequest:
    method: str
    path: str  # API path after the /api/vN prefix, percent-decoded per segment by the router
    args: dict[str, str]
    json: Any
    headers: dict[str, str]
    api_base: str  # absolute URL of the API root, e.g. http://127.0.0.1:1234/api/v3
    web_base: str  # absolute URL of the web root, e.g. http://127.0.0.1:1234
    principal: Principal = field(default_factory=Principal)
    match: dict[str, str] = field(default_factory=dict)


@dataclass
class ApiResponse:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[ApiRequest], ApiResponse]


class Router:
    """Method + regex routes over the raw (still percent-encoded) path, so ``group%2Fname`` stays one id."""

    def __init__(self) -> None:
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = []

    def add(self, method: str, pattern: str, handler: Handler) -> None:
        self.routes.append((method, re.compile(f"^{pattern}$"), handler))

    def find(self, method: str, path: str) -> tuple[Handler, dict[str, str]] | None:
        allowed = False
        for route_method, regex, handler in self.routes:
            m = regex.match(path)
            if m is None:
                continue
            if route_method == method:
                return handler, m.groupdict()
            allowed = True
        if allowed:
            raise ApiError(405, {"message": "Method Not Allowed"})
        return None


def paginate(req: ApiRequest, items: list[Any], *, default_per_page: int, gitlab_headers: bool = False) -> ApiResponse:
    """One page of ``items`` with a ``Link`` header (and GitLab's ``X-*`` page headers)."""
    try:
        page = max(1, int(req.args.get("page", "1")))
        per_page = min(100, max(1, int(req.args.get("per_page", str(default_per_page)))))
    except ValueError:
        raise ApiError(400, {"message": "page and per_page must be integers"}) from None
    total = len(items)
    pages = max(1, -(-total // per_page))
    chunk = items[(page - 1) * per_page : page * per_page]
    headers: dict[str, str] = {}
    base = f"{req.api_base}{req.path}"

    def link(p: int) -> str:
        params = {k: v for k, v in req.args.items() if k not in ("page", "per_page")}
        params.update({"page": str(p), "per_page": str(per_page)})
        return f"{base}?{urlencode(params)}"

    links = []
    if page < pages:
        links.append(f'<{link(page + 1)}>; rel="next"')
    if page > 1:
        links.append(f'<{link(page - 1)}>; rel="prev"')
    links.append(f'<{link(1)}>; rel="first"')
    links.append(f'<{link(pages)}>; rel="last"')
    headers["Link"] = ", ".join(links)
    if gitlab_headers:
        headers.update(
            {
                "X-Page": str(page),
                "X-Per-Page": str(per_page),
                "X-Total": str(total),
                "X-Total-Pages": str(pages),
                "X-Next-Page": str(page + 1) if page < pages else "",
                "X-Prev-Page": str(page - 1) if page > 1 else "",
            }
        )
    return ApiResponse(200, chunk, headers)
