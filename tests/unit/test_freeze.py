"""Freeze windows (issue 30): what a window written in ``.mergeway.yaml`` or the policy file means.

Each test reads a window the way a user writes it and asks what a deploy would see at a given
moment: frozen or not, since when, until when, why. Times cross DST switches and overlapping
windows, where a wrong answer would release a deploy an hour early or in the middle of a freeze.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
import yaml

from mergeway.freeze import FreezeError, active, format_duration, next_start, parse_duration, parse_windows
from mergeway.policy import PolicyError, environment_windows, parse, windows_for
from mergeway.repoconfig import RepoConfigError
from mergeway.repoconfig import parse as parse_config
from mergeway.report.freeze import freeze_note


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def windows(text: str) -> tuple:
    """Windows from the YAML a user writes (PyYAML turns some timestamps into datetimes itself)."""
    return parse_windows(yaml.safe_load(text), "freeze")


WEEKEND_BERLIN = windows('- {cron: "0 18 * * 5", duration: 62h, timezone: Europe/Berlin, reason: weekend}')


def test_a_cron_window_holds_from_its_start_until_just_before_its_end() -> None:
    weekend = windows('- {cron: "0 18 * * 5", duration: 62h, reason: weekend}')  # UTC: Fri 18:00 to Mon 08:00
    assert active(weekend, utc(2026, 12, 4, 17, 59, 59)) is None
    frozen = active(weekend, utc(2026, 12, 4, 18, 0))
    assert frozen is not None
    assert (frozen.since, frozen.ends_at, frozen.reason) == (utc(2026, 12, 4, 18), utc(2026, 12, 7, 8), "weekend")
    assert active(weekend, utc(2026, 12, 6, 12)) == frozen
    assert active(weekend, utc(2026, 12, 7, 7, 59, 59)) == frozen
    assert active(weekend, utc(2026, 12, 7, 8, 0)) is None  # the end is when deploys may go on


def test_cron_times_are_wall_clock_times_in_the_window_zone() -> None:
    # 18:00 in Berlin is 17:00 UTC in winter (CET) and 16:00 UTC in summer (CEST).
    assert active(WEEKEND_BERLIN, utc(2026, 12, 4, 16, 59)) is None
    winter = active(WEEKEND_BERLIN, utc(2026, 12, 4, 17, 0))
    assert winter is not None and winter.ends_at == utc(2026, 12, 7, 7)
    summer = active(WEEKEND_BERLIN, utc(2026, 7, 3, 16, 0))
    assert summer is not None and summer.ends_at == utc(2026, 7, 6, 6)
    assert active(WEEKEND_BERLIN, utc(2026, 7, 3, 15, 59)) is None


@pytest.mark.parametrize(
    ("inside", "since", "ends_at", "hours"),
    [
        # Clocks go forward on Sun 29 Mar 2026: Fri 18:00 CET to Mon 08:00 CEST is 61 hours.
        (utc(2026, 3, 29, 12), utc(2026, 3, 27, 17), utc(2026, 3, 30, 6), 61),
        # Clocks go back on Sun 25 Oct 2026: Fri 18:00 CEST to Mon 08:00 CET is 63 hours.
        (utc(2026, 10, 25, 12), utc(2026, 10, 23, 16), utc(2026, 10, 26, 7), 63),
    ],
    ids=["spring-forward", "fall-back"],
)
def test_a_window_spanning_a_dst_switch_ends_at_the_wall_clock_time_it_says(
    inside: datetime, since: datetime, ends_at: datetime, hours: int
) -> None:
    frozen = active(WEEKEND_BERLIN, inside)
    assert frozen is not None
    assert (frozen.since, frozen.ends_at) == (since, ends_at)
    assert frozen.ends_at - frozen.since == timedelta(hours=hours)
    assert active(WEEKEND_BERLIN, ends_at - timedelta(seconds=1)) is not None
    assert active(WEEKEND_BERLIN, ends_at) is None


def test_from_to_windows_read_naive_times_in_their_zone_and_honour_offsets() -> None:
    holidays = windows(
        """
        - {from: "2026-12-20T00:00", to: "2027-01-04T09:00", timezone: America/New_York, reason: holidays}
        - {from: 2027-02-01T10:00:00+01:00, to: "2027-02-01T12:00Z"}
        - {from: 2027-03-01, to: 2027-03-02}
        """
    )
    frozen = active(holidays, utc(2026, 12, 25))
    assert frozen is not None
    assert (frozen.since, frozen.ends_at, frozen.reason) == (utc(2026, 12, 20, 5), utc(2027, 1, 4, 14), "holidays")
    assert active(holidays, utc(2026, 12, 20, 4, 59)) is None
    offset = active(holidays, utc(2027, 2, 1, 9))  # YAML read this one as a datetime with an offset
    assert offset is not None and (offset.since, offset.ends_at) == (utc(2027, 2, 1, 9), utc(2027, 2, 1, 12))
    dates = active(holidays, utc(2027, 3, 1, 23, 59))  # YAML read these as dates: midnight to midnight
    assert dates is not None and dates.ends_at == utc(2027, 3, 2)


def test_overlapping_and_touching_windows_end_at_the_end_of_the_chain() -> None:
    chain = windows(
        """
        - {from: "2026-12-18T00:00", to: "2026-12-21T00:00", reason: release}
        - {from: "2026-12-20T00:00", to: "2026-12-24T00:00", reason: holidays}
        - {from: "2026-12-24T00:00", to: "2026-12-27T12:00", reason: christmas}
        - {cron: "0 12 27 12 *", duration: 1d, reason: year end}
        - {from: "2026-12-29T00:00", to: "2026-12-30T00:00", reason: not touching}
        """
    )
    frozen = active(chain, utc(2026, 12, 19))
    assert frozen is not None
    # release → holidays (overlap) → christmas (touching) → year end (touching) ends Mon 28 Dec 12:00.
    assert (frozen.since, frozen.ends_at, frozen.reason) == (utc(2026, 12, 18), utc(2026, 12, 28, 12), "release")
    both = active(chain, utc(2026, 12, 20, 12))  # release and holidays: the first listed says why
    assert both is not None and both.reason == "release"
    later = active(chain, utc(2026, 12, 25))
    assert later is not None and later.reason == "christmas"
    assert (later.since, later.ends_at) == (utc(2026, 12, 18), utc(2026, 12, 28, 12))
    assert active(chain, utc(2026, 12, 28, 12)) is None


def test_windows_inside_a_long_freeze_do_not_cut_it_short() -> None:
    # 8,000 hourly one-minute windows inside a year-long one: none of them ends the freeze early.
    year = windows('- {from: "2026-01-01", to: "2026-12-31", reason: year}\n- {cron: "30 * * * *", duration: 1m}')
    frozen = active(year, utc(2026, 6, 1, 0, 0, 30))
    assert frozen is not None
    assert (frozen.since, frozen.ends_at, frozen.reason, frozen.open_ended) == (
        utc(2026, 1, 1),
        utc(2026, 12, 31),
        "year",
        False,
    )


def test_a_cron_window_longer_than_its_period_is_reported_open_ended() -> None:
    always = windows('- {cron: "0 * * * *", duration: 2h}')
    frozen = active(always, utc(2026, 12, 5, 0, 30))
    assert frozen is not None and frozen.open_ended
    assert frozen.ends_at > utc(2026, 12, 8)


def test_next_start_is_the_first_freeze_after_a_moment() -> None:
    upcoming = next_start(WEEKEND_BERLIN, utc(2026, 12, 1))
    assert upcoming is not None
    assert (upcoming.since, upcoming.ends_at, upcoming.reason) == (utc(2026, 12, 4, 17), utc(2026, 12, 7, 7), "weekend")
    past = windows('- {from: "2020-01-01T00:00", to: "2020-01-02T00:00"}')
    assert next_start(past, utc(2026, 12, 1)) is None


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("90m", timedelta(minutes=90)),
        ("2h", timedelta(hours=2)),
        ("3d", timedelta(days=3)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1d2h3m", timedelta(days=1, hours=2, minutes=3)),
    ],
)
def test_durations(text: str, value: timedelta) -> None:
    assert parse_duration(text) == value
    assert parse_duration(format_duration(value)) == value  # messages show durations as written


#: A window written wrong, and what the PR is told: the place, then the mistake.
MISTAKES = [
    ({"cron": "0 18 * *", "duration": "1h"}, ".freeze[0].cron: '0 18 * *' must have 5 fields"),
    ({"cron": "0 25 * * *", "duration": "1h"}, ".freeze[0].cron: '0 25 * * *' is not a valid cron expression"),
    ({"cron": "0 0 30 2 *", "duration": "1h"}, ".freeze[0].cron: '0 0 30 2 *' never matches"),
    ({"cron": "0 18 * * 5"}, ".freeze[0].duration: required with cron"),
    ({"cron": "0 18 * * 5", "duration": "2 hours"}, ".freeze[0].duration: '2 hours' is not a duration"),
    ({"cron": "0 18 * * 5", "duration": "0m"}, ".freeze[0].duration: '0m' is not a positive duration"),
    ({"cron": "0 18 * * 5", "duration": "1h", "timezone": "Europe/Bärlin"}, ".freeze[0].timezone: unknown time zone"),
    ({"cron": "0 18 * * 5", "duration": "1h", "timezone": "../../etc/passwd"}, "unknown time zone"),
    ({"from": "2027-01-04T09:00", "to": "2026-12-20T00:00"}, ".freeze[0]: from (2027-01-04T09:00) must be before to"),
    ({"from": "2026-12-20T00:00", "to": "2026-12-20T00:00"}, ".freeze[0]: from (2026-12-20T00:00) must be before"),
    ({"from": "next friday", "to": "2026-12-20T00:00"}, ".freeze[0].from: 'next friday' is not an ISO 8601 time"),
    ({"from": "2026-12-20T00:00"}, ".freeze[0]: needs cron and duration, or from and to"),
    ({"cron": "0 18 * * 5", "duration": "1h", "from": "2026-12-20T00:00"}, "either cron and duration, or from"),
    ({"from": "2026-12-20T00:00", "to": "2026-12-21T00:00", "duration": "1h"}, ".freeze[0].duration: only with cron"),
    ({"cron": "0 18 * * 5", "duration": "1h", "zone": "UTC"}, ".freeze[0]: unknown key(s): zone (known: cron,"),
    ({"cron": "0 18 * * 5", "duration": "1h", "reason": "a\nb"}, ".freeze[0].reason: must be one line"),
]


@pytest.mark.parametrize(("window", "message"), MISTAKES)
def test_a_mistake_in_a_repository_window_names_its_place(window: dict, message: str) -> None:
    text = yaml.safe_dump(
        {"environments": [{"name": "production", "path": "deploy", "cluster": "prod", "freeze": [window]}]}
    )
    with pytest.raises(RepoConfigError) as raised:
        parse_config(text)
    assert str(raised.value).startswith(".mergeway.yaml: environment 'production'.freeze[0]")
    assert message in str(raised.value)


def test_a_freeze_list_must_be_a_bounded_list_of_mappings() -> None:
    with pytest.raises(FreezeError, match=re.escape("env.freeze: must be a list of windows")):
        parse_windows({"cron": "0 18 * * 5"}, "env.freeze")
    with pytest.raises(FreezeError, match=re.escape("env.freeze[0]: must be a mapping")):
        parse_windows(["0 18 * * 5"], "env.freeze")
    with pytest.raises(FreezeError, match=re.escape("env.freeze: at most 50 windows")):
        parse_windows([{"from": "2026-01-01", "to": "2026-01-02"}] * 51, "env.freeze")


POLICY = """
rules:
  - repositories: ["github:acme/*"]
    clusters: ["*"]
freeze:
  - repositories: ["github:acme/*"]
    clusters: [prod]
    cron: "0 18 * * 5"
    duration: 62h
    timezone: Europe/Berlin
    reason: weekend
  - repositories: ["*"]
    from: "2026-12-20T00:00"
    to: "2027-01-04T09:00"
    reason: release freeze
"""


def test_operator_windows_apply_by_repository_glob_and_cluster() -> None:
    policy = parse(POLICY)
    assert [w.reason for w in windows_for(policy, "github:acme/shop", "prod")] == ["weekend", "release freeze"]
    assert [w.reason for w in windows_for(policy, "github:acme/shop", "staging")] == ["release freeze"]
    assert [w.reason for w in windows_for(policy, "gitlab:acme/shop", "prod")] == ["release freeze"]
    weekend, release = windows_for(policy, "github:acme/shop", "prod")
    assert weekend.describe() == 'cron "0 18 * * 5" for 2d14h (Europe/Berlin)'
    assert release.describe() == "from 2026-12-20T00:00:00+00:00 to 2027-01-04T09:00:00+00:00"
    config = parse_config(
        yaml.safe_dump(
            {
                "environments": [
                    {"name": "production", "path": "deploy", "cluster": "prod"}
                    | {"freeze": [{"cron": "0 9 * * 1", "duration": "1h", "reason": "standup"}]}
                ]
            }
        )
    )
    joined = environment_windows(policy, "github:acme/shop", config.environments[0])
    assert [w.reason for w in joined] == ["weekend", "release freeze", "standup"]


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("- {repositories: ['acme/*'], cron: '0 18 * * 5', duration: 1h}", "freeze[0].repositories: 'acme/*' must"),
        ("- {cron: '0 18 * * 5', duration: 1h}", "freeze[0].repositories: required"),
        ("- {repositories: ['*'], clusters: [], cron: '0 18 * * 5', duration: 1h}", "freeze[0].clusters: must be"),
        ("- {repositories: ['*'], cron: '0 18 * * 8', duration: 1h}", "freeze[0].cron: '0 18 * * 8' is not valid"),
        ("- {repositories: ['*'], cron: '0 18 * * 5', duration: 1h, namespace: x}", "freeze[0]: unknown key(s)"),
    ],
)
def test_a_mistake_in_an_operator_window_is_a_policy_error(entry: str, message: str) -> None:
    with pytest.raises(PolicyError) as raised:
        parse(f"rules: []\nfreeze:\n{entry}\n")
    assert message.replace("is not valid", "is not a valid cron expression") in str(raised.value)


def test_the_preview_note_says_until_when_or_from_when() -> None:
    now = utc(2026, 12, 24, 10)
    holidays = windows('- {from: "2026-12-20T00:00", to: "2027-01-04T09:00", reason: release freeze}')
    assert freeze_note("production", holidays, now) == (
        "❄️ `production` is frozen until Mon 4 Jan 2027 09:00 UTC (release freeze): merging now waits until then."
    )
    assert freeze_note("production", WEEKEND_BERLIN, utc(2026, 12, 4, 10)) == (
        "❄️ A freeze of `production` starts Fri 4 Dec 2026 18:00 Europe/Berlin (17:00 UTC) and lasts until "
        "Mon 7 Dec 2026 08:00 Europe/Berlin (07:00 UTC) (weekend): a merge deployed by then is not held, "
        "one that is not waits until the freeze ends."
    )
    assert freeze_note("production", WEEKEND_BERLIN, utc(2026, 12, 2, 10)) == ""  # more than a day ahead
    assert freeze_note("production", (), now) == ""
