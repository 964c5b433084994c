"""GitHub's official descriptions as a validator: REST responses and webhook payloads.

The REST description (``@octokit/openapi``, OpenAPI 3.0.3) and the webhooks description
(``@octokit/openapi-webhooks``, OpenAPI 3.1) are fetched by ``tools/conformance/fetch.py`` into
``~/.cache/mergeway/openapi``; loading one fetches it first if the cache is empty (npm reachable).

Both are turned into plain JSON Schema (draft 2020-12) for ``jsonschema``:

- every local ``$ref`` (``#/components/...``) becomes absolute (``urn:github-rest#/components/...``),
  so any sub-schema can be validated on its own against a registry holding the whole document;
- OpenAPI 3.0's ``nullable: true`` becomes ``anyOf: [<schema>, {"type": "null"}]`` (3.1 already
  spells null as a type);
- ``format: date-time`` is checked (GitHub's clients parse these), other formats are not.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

import jsonschema
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from tools.conformance import fetch

REST_URI = "urn:github-rest"
WEBHOOKS_URI = "urn:github-webhooks"
FORMATS = jsonschema.FormatChecker(formats=())


@FORMATS.checks("date-time", raises=ValueError)
def _date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    datetime.fromisoformat(value.replace("Z", "+00:00"))
    return "T" in value


@dataclass(frozen=True)
class Difference:
    """One way a body differs from its schema: where (JSON path) and what (validator message)."""

    where: str
    what: str

    def __str__(self) -> str:
        return f"{self.where}: {self.what}"


def _absolute_refs(node: Any, base: str, *, openapi30: bool) -> Any:
    if isinstance(node, dict):
        out = {k: _absolute_refs(v, base, openapi30=openapi30) for k, v in node.items()}
        ref = out.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/"):
            out["$ref"] = base + ref
        if openapi30 and out.get("nullable") is True:
            del out["nullable"]
            return {"anyOf": [out, {"type": "null"}]}
        return out
    if isinstance(node, list):
        return [_absolute_refs(v, base, openapi30=openapi30) for v in node]
    return node


def _load(package: fetch.Package, base: str) -> dict[str, Any]:
    fetch.fetch(package)
    raw = json.loads(package.path("generated/api.github.com.json").read_text())
    return _absolute_refs(raw, base, openapi30=raw["openapi"].startswith("3.0"))


def _errors(validator: jsonschema.protocols.Validator, instance: Any) -> list[Difference]:
    """The leaf errors, so an ``anyOf`` failure names the field that broke it, not just the root."""
    found: list[Difference] = []
    for error in validator.iter_errors(instance):
        leaves = _leaves(error)
        found.extend(Difference(e.json_path, e.message[:300]) for e in leaves)
    return sorted(set(found), key=str)


def _leaves(error: jsonschema.ValidationError) -> list[jsonschema.ValidationError]:
    """For ``anyOf``/``oneOf``: the errors of the branch meant (one whose ``type`` fits the value)."""
    if not error.context:
        return [error]
    branches: dict[Any, list[jsonschema.ValidationError]] = {}
    for sub in error.context:
        branches.setdefault(sub.relative_schema_path[0], []).append(sub)
    fitting = [
        errs for errs in branches.values() if not any(e.validator == "type" and not e.relative_path for e in errs)
    ]
    chosen = min(fitting or list(branches.values()), key=len)
    return [leaf for sub in chosen for leaf in _leaves(sub)]


def _pointer(*parts: str) -> str:
    return "#/" + "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)


class RestDescription:
    """``@octokit/openapi``'s ``api.github.com.json``: paths, methods, statuses and their bodies."""

    def __init__(self) -> None:
        self.document = _load(fetch.REST, REST_URI)
        self.version = fetch.REST.version
        self.registry: Registry = Registry().with_resource(REST_URI, Resource(self.document, DRAFT202012))
        templates = []
        for template in self.document["paths"]:
            pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template))
            templates.append((template.count("{"), template, re.compile(f"^{pattern}$")))
        self._templates = sorted(templates)  # the most literal template wins (/commits/{ref}/statuses)
        self._validators: dict[str, jsonschema.protocols.Validator] = {}

    def template(self, path: str) -> str | None:
        path = path.split("?", 1)[0]
        return next((t for _, t, regex in self._templates if regex.match(path)), None)

    def operation(self, method: str, template: str) -> dict[str, Any] | None:
        op = self.document["paths"].get(template, {}).get(method.lower())
        return op if isinstance(op, dict) else None

    def response(self, op: dict[str, Any], status: int) -> tuple[str, dict[str, Any]] | None:
        """The documented response for ``status`` (or ``default``) as (its key, the response object)."""
        responses = op.get("responses", {})
        key = str(status) if str(status) in responses else ("default" if "default" in responses else None)
        if key is None:
            return None
        found = responses[key]
        ref = found.get("$ref", "")
        if ref.startswith(REST_URI + "#/components/responses/"):
            found = self.document["components"]["responses"][ref.rsplit("/", 1)[1]]
        return key, found

    def check(self, method: str, template: str, status: int, body: bytes) -> list[Difference]:
        """Differences of one answer from the description; [] when it conforms."""
        op = self.operation(method, template)
        if op is None:
            return [Difference("$", f"{method} {template} is not in the description")]
        documented = self.response(op, status)
        if documented is None:
            listed = ", ".join(op.get("responses", {}))
            return [Difference("$", f"status {status} is not documented (documented: {listed})")]
        key, response = documented
        schema = response.get("content", {}).get("application/json", {}).get("schema")
        if schema is None:
            return [] if not body.strip() else [Difference("$", f"{status} is documented without a body")]
        try:
            instance = json.loads(body)
        except ValueError:
            return [Difference("$", "body is not JSON")]
        shared = op["responses"][key].get("$ref", "")
        if shared:  # a response shared through components/responses
            parts = ("components", "responses", shared.rsplit("/", 1)[1])
        else:
            parts = ("paths", template, method.lower(), "responses", key)
        pointer = REST_URI + _pointer(*parts, "content", "application/json", "schema")
        return _errors(self._validator(pointer), instance)

    def check_request(self, method: str, template: str, body: bytes) -> list[Difference]:
        """Differences of a request body from the operation's ``requestBody``; [] when it conforms or has none."""
        op = self.operation(method, template)
        if op is None or not body.strip():
            return []
        request = op.get("requestBody", {})
        pointer = REST_URI + _pointer("paths", template, method.lower(), "requestBody")
        shared = request.get("$ref", "")
        if shared.startswith(REST_URI + "#/components/requestBodies/"):
            request = self.document["components"]["requestBodies"][shared.rsplit("/", 1)[1]]
            pointer = shared
        if "application/json" not in request.get("content", {}):
            return [Difference("$", f"{method} {template} takes no JSON body in the description")]
        try:
            instance = json.loads(body)
        except ValueError:
            return [Difference("$", "request body is not JSON")]
        return _errors(self._validator(pointer + "/content/application~1json/schema"), instance)

    def check_component(self, name: str, body: bytes) -> list[Difference]:
        """Differences of a JSON body from ``components/schemas/<name>`` (e.g. ``basic-error``)."""
        try:
            instance = json.loads(body)
        except ValueError:
            return [Difference("$", "body is not JSON")]
        return _errors(self._validator(REST_URI + _pointer("components", "schemas", name)), instance)

    def _validator(self, pointer: str) -> jsonschema.protocols.Validator:
        if pointer not in self._validators:
            self._validators[pointer] = jsonschema.Draft202012Validator(
                {"$ref": pointer}, registry=self.registry, format_checker=FORMATS
            )
        return self._validators[pointer]


class WebhookDescription:
    """``@octokit/openapi-webhooks``: one request-body schema per event and action."""

    def __init__(self) -> None:
        self.document = _load(fetch.WEBHOOKS, WEBHOOKS_URI)
        self.version = fetch.WEBHOOKS.version
        self.registry: Registry = Registry().with_resource(WEBHOOKS_URI, Resource(self.document, DRAFT202012))
        self._validators: dict[str, jsonschema.protocols.Validator] = {}

    @staticmethod
    def name(event: str, action: str) -> str:
        """``pull_request`` + ``synchronize`` → ``pull-request-synchronize``; ``ping`` → ``ping``."""
        event = event.replace("_", "-")
        return f"{event}-{action.replace('_', '-')}" if action else event

    def names(self) -> list[str]:
        return sorted(self.document["webhooks"])

    def webhook(self, name: str) -> dict[str, Any]:
        return self.document["webhooks"][name]["post"]

    def schema_pointer(self, name: str) -> str:
        return WEBHOOKS_URI + _pointer("webhooks", name, "post", "requestBody", "content", "application/json", "schema")

    def schema(self, name: str) -> dict[str, Any]:
        return self.webhook(name)["requestBody"]["content"]["application/json"]["schema"]

    def resolve(self, ref: str) -> dict[str, Any]:
        resolved: Any = self.registry.resolver().lookup(ref).contents
        return resolved if isinstance(resolved, dict) else {}

    def required_headers(self, name: str) -> list[str]:
        return [
            p["name"] for p in self.webhook(name).get("parameters", []) if p.get("in") == "header" and p.get("required")
        ]

    def check(self, name: str, payload: Any) -> list[Difference]:
        if name not in self.document["webhooks"]:
            return [Difference("$", f"webhook {name!r} is not in the description")]
        pointer = self.schema_pointer(name)
        if pointer not in self._validators:
            self._validators[pointer] = jsonschema.Draft202012Validator(
                {"$ref": pointer}, registry=self.registry, format_checker=FORMATS
            )
        return _errors(self._validators[pointer], payload)


@cache
def rest() -> RestDescription:
    return RestDescription()


@cache
def webhooks() -> WebhookDescription:
    return WebhookDescription()
