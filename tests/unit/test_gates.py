"""The gate rule (a lock, then a freeze, then environment order), `after:` in `.mergeway.yaml`
(unknown names and cycles refused, deploy order), and the gate commands as the parser reads them."""

from __future__ import annotations

import datetime as dt

import pytest

from mergeway import repoconfig
from mergeway.commands import parse_command
from mergeway.deployments import Deployment
from mergeway.events import Command
from mergeway.freeze import Freeze, FreezeWindow
from mergeway.gates import Lock, decide

A, B = "a" * 40, "b" * 40


def rec(env: str, *phases: str, healthy: str = "", reason: str = "") -> Deployment:
    record = Deployment("github:acme/shop", env, A)
    for phase in phases:
        record = record.enter(phase, reason=reason)  # type: ignore[arg-type]
    return record._replace(healthy_commit=healthy)


FREEZE = Freeze(
    FreezeWindow(reason="weekend"),
    dt.datetime(2026, 12, 4, 18, 0, tzinfo=dt.UTC),
    dt.datetime(2026, 12, 7, 8, 0, tzinfo=dt.UTC),
    "weekend",
)


def test_an_environment_without_gates_deploys_the_head():
    gate = decide(None, None, {})
    assert gate.open and gate.pin == "" and gate.reason == ""


def test_a_lock_holds_before_anything_else_and_says_who_and_why():
    gate = decide(Lock("alice", 0.0, "incident 42"), FREEZE, {"staging": None})
    assert (gate.open, gate.kind, gate.reason) == (False, "lock", "locked by @alice: incident 42")
    assert decide(Lock("bob", 0.0), None, {}).reason == "locked by @bob"


def test_a_freeze_holds_until_its_end_unless_an_admin_deploys_through_it():
    gate = decide(None, FREEZE, {})
    assert (gate.open, gate.kind) == (False, "freeze")
    assert gate.reason == "frozen until 2026-12-07 08:00 UTC (weekend)" and gate.until == FREEZE.ends_at.timestamp()
    through = decide(None, FREEZE, {}, during_freeze="carol")
    assert (
        through.open
        and through.reason == "deployed during the freeze by @carol (frozen until 2026-12-07 08:00 UTC (weekend))"
    )
    # Through a freeze, not through order or a lock.
    assert not decide(None, FREEZE, {"staging": None}, during_freeze="carol").open
    assert decide(Lock("alice", 0.0), FREEZE, {}, during_freeze="carol").kind == "lock"


@pytest.mark.parametrize(
    ("record", "words"),
    [
        (None, "waiting for staging to deploy this merge and be healthy"),
        (rec("staging", "queued", "applying"), "waiting for staging to be healthy on this merge (it is applying)"),
        (
            rec("staging", "queued", "failed", reason="boom"),
            "waiting for staging: its deploy of this merge failed (boom)",
        ),
        (
            rec("staging", "queued", "held", reason="locked by @alice"),
            "waiting for staging, which is held (locked by @alice)",
        ),
        (rec("staging", "superseded"), "a later merge deployed it"),
    ],
)
def test_order_waits_until_every_followed_environment_is_healthy_on_the_merge(record: Deployment | None, words: str):
    gate = decide(None, None, {"staging": record})
    assert not gate.open and gate.kind == "after" and words in gate.reason, gate.reason


def test_order_deploys_the_commit_the_followed_environments_are_healthy_on():
    gate = decide(None, None, {"staging": rec("staging", "healthy", healthy=B), "qa": rec("qa", "healthy", healthy=B)})
    assert gate.open and gate.pin == B
    split = decide(None, None, {"staging": rec("staging", "healthy", healthy=A), "qa": rec("qa", "healthy", healthy=B)})
    assert not split.open and "healthy on one commit" in split.reason


def config(*envs: str) -> str:
    return "environments:\n" + "".join(f"- {{name: {e}, path: p, cluster: c{rest}}}\n" for e, rest in map(_split, envs))


def _split(spec: str) -> tuple[str, str]:
    name, _, after = spec.partition(">")
    return name, f", after: [{after}]" if after else ""


def test_after_orders_the_deploys_whatever_the_order_of_the_file():
    parsed = repoconfig.parse(config("production>staging", "staging", "canary>production"))
    assert [e.name for e in repoconfig.in_order(parsed.environments)] == ["staging", "production", "canary"]
    assert parsed.environment("production").after == ("staging",)  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("envs", "message"),
    [
        (
            ("production>stagin", "staging"),
            "'production'.after names 'stagin', which is not declared (known: production, staging)",
        ),
        (("a>b", "b>c", "c>a"), "environments follow each other in a cycle (a → b → c → a)"),
        (("a>a",), "cycle (a → a)"),
    ],
)
def test_unknown_names_and_cycles_in_after_are_configuration_errors(envs: tuple[str, ...], message: str):
    with pytest.raises(repoconfig.RepoConfigError) as caught:
        repoconfig.parse(config(*envs))
    assert message in str(caught.value), str(caught.value)


def test_gate_commands_parse_with_a_free_text_reason_and_the_freeze_flag():
    assert parse_command("/lock production incident 42, db failover!") == Command(
        "lock", ("production", "incident", "42,", "db", "failover!")
    )
    assert parse_command("/unlock production") == Command("unlock", ("production",))
    assert parse_command("/deploy production --during-freeze") == Command("deploy", ("production", "--during-freeze"))
    assert parse_command("/lock " + " ".join(["w"] * 9)) is None  # bounded like every command
