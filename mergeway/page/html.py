"""The environments page as server-rendered HTML: no JavaScript, no build step, readable on a phone.

Templates are Jinja2 with autoescaping on and undefined names refused, so every value (branch
names, PR titles, commit messages, reasons: all untrusted) is escaped where it is written, and
links only ever hold the http(s) addresses :mod:`~mergeway.page.model` built. The page refreshes
itself with ``<meta http-equiv="refresh">``; the CSS is inline and lays rows out as cards on a
narrow screen.
"""

from __future__ import annotations

import time
from typing import NamedTuple
from urllib.parse import quote

from jinja2 import DictLoader, Environment, StrictUndefined
from markupsafe import Markup

from mergeway.deployments import Deployment
from mergeway.page.model import FAILURES_SHOWN, SHORT_SHA, Row, commit_url, iso, label, pr_url
from mergeway.redaction import redact

_CSS = """
:root{color-scheme:light dark;--ok:#1a7f37;--bad:#cf222e;--hold:#9a6700;--run:#0969da;--mute:#6e7781}
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0 auto;padding:1rem;max-width:80rem}
h1{font-size:1.3rem;margin:.2rem 0 1rem}h1 small{font-weight:normal;color:var(--mute);font-size:.85rem}
table{border-collapse:collapse;width:100%}th,td{text-align:left;vertical-align:top;padding:.45rem .5rem;
border-bottom:1px solid #8884}th{font-size:.8rem;text-transform:uppercase;color:var(--mute)}
code{font:13px ui-monospace,SFMono-Regular,Menlo,monospace}a{color:var(--run)}
.phase{font-weight:600;white-space:nowrap}.healthy{color:var(--ok)}.failed{color:var(--bad)}
.held,.superseded{color:var(--hold)}.applying,.queued{color:var(--run)}
.reason,.muted,.when{color:var(--mute);font-size:.88rem}.reason{display:block;overflow-wrap:anywhere}
ul{margin:.2rem 0;padding-left:1.1rem}.empty{color:var(--mute);padding:2rem 0}
@media (max-width:720px){thead{display:none}table,tbody,tr,td{display:block;width:auto}
tr{border:1px solid #8886;border-radius:8px;margin:0 0 .8rem;padding:.3rem .2rem}
td{border:0;padding:.2rem .5rem}td[data-label]::before{content:attr(data-label) ": ";color:var(--mute);
font-size:.8rem;text-transform:uppercase}}
"""

_BASE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="{{ refresh }}">
<title>{{ title }}</title><style>{{ css }}</style></head>
<body>{% block body %}{% endblock %}
<p class="muted">Read {{ now }} · refreshes every {{ refresh }} s · <a href="{{ json }}">JSON</a></p>
</body></html>
"""

_MACROS = """
{% macro commit(sha, url) -%}
{% if url %}<a href="{{ url }}"><code>{{ sha[:short] }}</code></a>
{%- elif sha %}<code>{{ sha[:short] }}</code>{% endif %}
{%- endmacro %}
{% macro pull(number, url, title, merged_by) -%}
{% if number %}{% if url %}<a href="{{ url }}">#{{ number }}</a>{% else %}#{{ number }}{% endif %}
{% if title %} <span class="title">{{ title }}</span>{% endif %}
{% if merged_by %} <span class="muted">merged by {{ merged_by }}</span>{% endif %}
{% else %}<span class="muted">—</span>{% endif %}
{%- endmacro %}
{% macro failures(items) -%}
{% if items %}<ul class="reason">
{% for obj, why in items %}<li><code>{{ obj }}</code>: {{ why }}</li>{% endfor %}
</ul>{% endif %}
{%- endmacro %}
"""

_INDEX = """{% extends "base" %}{% block body %}{% from "macros" import commit, pull, failures %}
<h1>Environments <small>{{ rows|length }} known</small></h1>
{% if rows %}<table><thead><tr><th>Environment</th><th>Where</th><th>Commit</th><th>Pull request</th>
<th>When</th><th>Phase</th><th>Drift</th><th>In flight</th></tr></thead><tbody>
{% for r in rows %}<tr>
<td data-label="Environment"><a href="{{ r.link }}"><strong>{{ r.row.environment }}</strong></a>
<span class="muted">{{ r.row.repository }}</span></td>
<td data-label="Where">{{ r.row.cluster or "—" }}/{{ r.row.namespace or "default" }}</td>
<td data-label="Commit">{{ commit(r.row.commit, r.row.commit_url) }}</td>
<td data-label="Pull request">{{ pull(r.row.pr, r.row.pr_url, r.row.pr_title, r.row.merged_by) }}</td>
<td data-label="When" class="when"><time datetime="{{ r.since }}">{{ r.since_text }}</time></td>
<td data-label="Phase"><span class="phase {{ r.row.phase }}">{{ r.row.phase }}</span>
{% if r.row.reason %}<span class="reason">{{ r.row.reason }}</span>{% endif %}
{{ failures(r.row.failures) }}</td>
<td data-label="Drift">
{% if r.row.drift is none %}<span class="muted">—</span>
{% elif r.row.drift.error %}<span class="phase held">not checked</span>
<span class="reason">{{ r.row.drift.error }}</span>
{% elif r.row.drift.objects %}
<span class="phase failed">{{ r.row.drift.objects }} object{{ "s" if r.row.drift.objects != 1 }} drifted</span>
{% else %}<span class="phase healthy">in sync</span>{% endif %}
{% if r.row.drift is not none %}<span class="reason">checked {{ r.drift_text }}</span>{% endif %}
</td>
<td data-label="In flight">
{% for p in r.row.pending %}<div><code>{{ p.commit[:short] }}</code>
<span class="phase {{ p.phase }}">{{ p.phase }}</span>{% if p.pr %} #{{ p.pr }}{% endif %}
{% if p.reason %}<span class="reason">{{ p.reason }}</span>{% endif %}</div>
{% else %}<span class="muted">—</span>{% endfor %}
</td>
</tr>{% endfor %}</tbody></table>
{% else %}<p class="empty">No deployment recorded yet: merge a pull request that deploys an environment.</p>{% endif %}
{% endblock %}"""

_ENVIRONMENT = """{% extends "base" %}{% block body %}{% from "macros" import commit, pull, failures %}
<p><a href="{{ home }}">← all environments</a></p>
<h1>{{ row.environment }}
<small>{{ row.repository }} · {{ row.cluster or "—" }}/{{ row.namespace or "default" }}</small></h1>
<p>Runs {{ commit(row.commit, row.commit_url) }}: <span class="phase {{ row.phase }}">{{ row.phase }}</span>
{% if row.reason %}<span class="reason">{{ row.reason }}</span>{% endif %}</p>
<table><thead><tr><th>Commit</th><th>Pull request</th><th>Phase</th><th>Phases (UTC)</th></tr></thead><tbody>
{% for d in history %}<tr>
<td data-label="Commit">{{ commit(d.commit, d.commit_url) }}</td>
<td data-label="Pull request">{{ pull(d.pr, d.pr_url, d.title, d.merged_by) }}</td>
<td data-label="Phase"><span class="phase {{ d.phase }}">{{ d.phase }}</span>
{% if d.reason %}<span class="reason">{{ d.reason }}</span>{% endif %}
{{ failures(d.failures) }}</td>
<td data-label="Phases" class="when">
{% for at, name, why in d.phases %}<div>{{ at }} {{ name }}{% if why %} · {{ why }}{% endif %}</div>{% endfor %}
</td>
</tr>{% endfor %}</tbody></table>
{% endblock %}"""

_TEMPLATES = Environment(
    loader=DictLoader({"base": _BASE, "macros": _MACROS, "index": _INDEX, "environment": _ENVIRONMENT}),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_TEMPLATES.globals.update(short=SHORT_SHA, css=Markup(_CSS))  # noqa: S704 (a constant of this module, no input in it)


class _Shown(NamedTuple):
    """A row with what the index template needs beside it."""

    row: Row
    link: str
    since: str
    since_text: str
    drift_text: str


class _Past(NamedTuple):
    """One record of an environment's history, as its page lists it."""

    commit: str
    commit_url: str
    pr: int
    pr_url: str
    title: str
    merged_by: str
    phase: str
    reason: str
    failures: list[tuple[str, str]]
    phases: list[tuple[str, str, str]]


def index(rows: list[Row], *, refresh: int, now: float | None = None) -> str:
    """The page at ``/``: one row per (repository, environment)."""
    now = time.time() if now is None else now
    shown = [
        _Shown(r, environment_path(r), iso(r.since), ago(r.since, now), ago(r.drift.checked_at, now) if r.drift else "")
        for r in rows
    ]
    return _TEMPLATES.get_template("index").render(
        rows=shown,
        refresh=refresh,
        title="Mergeway · environments",
        now=time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(now)),
        json="/api/environments",
    )


def environment(row: Row, history: list[Deployment], *, refresh: int, now: float | None = None) -> str:
    """An environment's own page: its row's summary and its last deploys, each with its phases."""
    now = time.time() if now is None else now
    past = [
        _Past(
            d.commit,
            commit_url(d.repository, d.repository_url, d.commit),
            d.pr,
            pr_url(d.repository, d.repository_url, d.pr),
            redact(d.title),
            d.merged_by,
            label(d),
            redact(d.reason),
            [(redact(f.object), redact(f.reason)) for f in d.failures[:FAILURES_SHOWN]],
            [(time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(e.at)), e.phase, redact(e.reason)) for e in d.phases],
        )
        for d in history
    ]
    return _TEMPLATES.get_template("environment").render(
        row=row,
        history=past,
        refresh=refresh,
        title=f"Mergeway · {row.environment} · {row.repository}",
        now=time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(now)),
        json="/api" + environment_path(row),
        home="/",
    )


def environment_path(row: Row | Deployment) -> str:
    """``/environments/<forge>/<owner/name>/<environment>``: the environment's own page."""
    forge, _, name = row.repository.partition(":")
    return f"/environments/{quote(forge, safe='')}/{quote(name)}/{quote(row.environment, safe='')}"


def ago(at: float, now: float) -> str:
    """``2026-12-05 00:31 UTC (4 min ago)``: the time, and how long ago for a quick read."""
    if not at:
        return "—"
    seconds = max(0, int(now - at))
    span = (
        f"{seconds} s"
        if seconds < 60
        else f"{seconds // 60} min"
        if seconds < 3600
        else f"{seconds // 3600} h"
        if seconds < 172800
        else f"{seconds // 86400} days"
    )
    return f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(at))} ({span} ago)"
