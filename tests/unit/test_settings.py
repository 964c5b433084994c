"""Settings are documented where operators look, and ``.env.example`` is a configuration that starts.

Each :class:`~mergeway.config.Settings` field names its variable; an undocumented one is a setting
nobody can find, and an example file that does not parse would be copied into deployments as is.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from mergeway.config import Settings
from tests.conftest import ROOT

EXAMPLE = ROOT / ".env.example"


def _example() -> dict[str, str]:
    """The variables ``.env.example`` sets (commented-out examples excluded), as a shell would read them."""
    pairs = (line.split("=", 1) for line in EXAMPLE.read_text().splitlines() if re.match(r"^[A-Z_]+=", line))
    return {name: value.replace("~", str(ROOT)) for name, value in pairs}


def test_every_variable_is_documented_in_the_example() -> None:
    text = EXAMPLE.read_text()
    documented = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]*)=", text, flags=re.M))
    read = {f.metadata["env"] for f in dataclasses.fields(Settings)}
    assert sorted(read - documented) == []


def test_the_example_is_a_valid_configuration() -> None:
    env = {**_example(), "GITHUB_TOKEN": "t", "GITLAB_TOKEN": "t", "MERGEWAY_POLICY": "allow-all"}
    env.update(GITHUB_WEBHOOK_SECRET="s", GITLAB_WEBHOOK_SECRET="s")
    for role in ("web", "worker"):
        settings = Settings.from_env(env, role=role)  # raises ConfigError on any invalid value
        assert (settings.redis_url, settings.log_level, settings.web_port) == (
            env["REDIS_URL"],
            env["LOG_LEVEL"],
            int(env["PORT"]),
        )


#: Variables whose value in ``.env.example`` is an example to adapt, not the default, and why.
EXAMPLE_NOT_DEFAULT = {
    "MERGEWAY_BOT_LOGINS": "an example login; by default only the credentials' own account is the bot",
    "WEB_CONCURRENCY": "a small fixed count for `make run`; unset means one process per CPU",
}


def test_an_empty_environment_gives_the_defaults_the_example_documents() -> None:
    """What operators read in ``.env.example`` is what they get by leaving a variable unset.

    Compared with the documentation, not with ``Settings()``: a default changed in ``config.py``
    alone (say ``MERGEWAY_FORGE_RETRIES`` 5 → 1) must fail here, not pass by comparing code with itself.
    """
    by_env = {f.metadata["env"]: f.name for f in dataclasses.fields(Settings)}
    example = {
        name: value.replace("~", str(Path.home()))
        for name, value in (
            line.split("=", 1) for line in EXAMPLE.read_text().splitlines() if re.match(r"^[A-Z_]+=", line)
        )
    }
    defaults = Settings.from_env({})
    compared = 0
    for variable, value in example.items():
        if variable in EXAMPLE_NOT_DEFAULT or variable not in by_env:
            continue
        name = by_env[variable]
        documented = Settings.read(name, {variable: value})
        assert getattr(defaults, name) == documented, f"{variable}: .env.example says {value!r}"
        compared += 1
    assert compared >= 40, "most settings are compared"
    assert set(EXAMPLE_NOT_DEFAULT) <= set(example), "an exception for a variable the example no longer sets"


def test_one_setting_reads_as_all_of_them_do() -> None:
    env = {"MERGEWAY_HELM": "/opt/helm", "XDG_CACHE_HOME": "/var/cache", "MERGEWAY_CACHE_DIR": "", "PORT": "9000"}
    every = Settings.from_env(env)
    for name in ("helm", "kubectl", "user_cache_dir", "cache_dir", "web_port"):
        assert Settings.read(name, env) == getattr(every, name)
