"""Freeze windows: both forms parsed and validated, read on their time zone's wall clock across
daylight-saving changes, and overlapping occurrences merged into one freeze."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from mergeway import policy, repoconfig
from mergeway.freeze import FreezeError, frozen_until, next_freeze, parse_window, parse_windows

UTC = dt.UTC
PARIS = ZoneInfo("Europe/Paris")


def at(*args: int, tz: dt.tzinfo = UTC) -> dt.datetime:
    return dt.datetime(*args, tzinfo=tz)


def test_a_weekend_cron_window_freezes_from_friday_evening_to_monday_morning():
    weekend = parse_window({"cron": "0 18 * * 5", "duration": "62h", "timezone": "Europe/Paris"}, "w")
    friday = at(2026, 12, 4, 18, 0, tz=PARIS)
    assert frozen_until([weekend], friday - dt.timedelta(seconds=1)) is None
    freeze = frozen_until([weekend], friday)
    assert freeze is not None and freeze.until == at(2026, 12, 7, 8, 0, tz=PARIS)
    assert frozen_until([weekend], at(2026, 12, 6, 12, 0, tz=PARIS)) == freeze
    assert frozen_until([weekend], at(2026, 12, 7, 8, 0, tz=PARIS)) is None  # the end is not frozen
    assert next_freeze([weekend], at(2026, 12, 7, 9, 0, tz=PARIS)) == at(2026, 12, 11, 18, 0, tz=PARIS)


def test_a_cron_window_keeps_its_wall_clock_time_across_daylight_saving_changes():
    office = parse_window({"cron": "0 9 * * 1-5", "duration": "1h", "timezone": "Europe/Paris"}, "w")
    # 09:00 in Paris is 08:00 UTC in winter and 07:00 UTC in summer (the change was on 2026-03-29).
    assert frozen_until([office], at(2026, 3, 27, 8, 30)) is not None  # Friday, winter time
    assert frozen_until([office], at(2026, 3, 30, 8, 30)) is None  # Monday, summer time: 10:30 local
    summer = frozen_until([office], at(2026, 3, 30, 7, 30))
    assert summer is not None and summer.until == at(2026, 3, 30, 8, 0)


def test_a_start_in_the_skipped_hour_begins_at_its_end_and_the_duration_is_elapsed_time():
    night = parse_window({"cron": "30 2 * * *", "duration": "2h", "timezone": "Europe/Paris"}, "w")
    # 02:30 does not exist on 2026-03-29 in Paris (02:00 → 03:00): the window begins at 03:00 local.
    freeze = frozen_until([night], at(2026, 3, 29, 3, 10, tz=PARIS))
    assert freeze is not None and freeze.until == at(2026, 3, 29, 5, 0, tz=PARIS)
    # On 2026-10-25 02:30 happens twice; the two occurrences merge: frozen until the second one ends.
    autumn = frozen_until([night], at(2026, 10, 25, 0, 45, tz=UTC))  # 02:45 local, first time
    assert autumn is not None and autumn.until == at(2026, 10, 25, 3, 30, tz=UTC)


def test_a_from_to_window_reads_times_without_an_offset_in_its_time_zone():
    holidays = parse_window(
        {"from": "2026-12-20 00:00", "to": dt.datetime(2027, 1, 4, 9, 0), "timezone": "America/New_York"}, "w"
    )
    assert frozen_until([holidays], at(2026, 12, 20, 4, 59)) is None  # 23:59 in New York
    freeze = frozen_until([holidays], at(2026, 12, 20, 5, 0))
    assert freeze is not None and freeze.until == at(2027, 1, 4, 14, 0)
    offset = parse_window({"from": "2026-12-20T00:00:00+01:00", "to": "2026-12-21", "timezone": "UTC"}, "w")
    assert offset.start == at(2026, 12, 19, 23, 0) and offset.end == at(2026, 12, 21, 0, 0)


def test_back_to_back_windows_merge_into_one_freeze():
    first = parse_window({"from": "2026-12-01 10:00", "to": "2026-12-01 12:00"}, "a")
    second = parse_window({"from": "2026-12-01 12:00", "to": "2026-12-01 15:00", "reason": "later"}, "b")
    freeze = frozen_until([first, second], at(2026, 12, 1, 11, 0))
    assert freeze is not None and freeze.until == at(2026, 12, 1, 15, 0) and freeze.window.reason == "later"
    assert freeze.describe() == "frozen until 2026-12-01 15:00 UTC (later)"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"cron": "0 18 * * 5"}, "duration is required"),
        ({"cron": "0 18 * * 5", "duration": "2 hours"}, "must be like 2h"),
        ({"cron": "0 18 * * 5", "duration": 0}, "more than 0"),
        ({"cron": "61 18 * * 5", "duration": "1h"}, "not a five-field cron expression"),
        ({"cron": "0 0 18 * * 5", "duration": "1h"}, "not a five-field cron expression"),
        ({"cron": "0 18 * * 5", "duration": "1h", "timezone": "Mars/Olympus"}, "not a known IANA time zone"),
        ({"from": "2026-12-20 00:00"}, "needs `cron` and `duration`, or `from` and `to`"),
        ({"from": "2026-12-21", "to": "2026-12-20"}, "must be after `from`"),
        ({"from": "someday", "to": "2026-12-20"}, "must be a date and time"),
        ({"cron": "0 18 * * 5", "duration": "1h", "from": "2026-12-20"}, "not both"),
        ({"from": "2026-12-20", "to": "2026-12-21", "duration": "1h"}, "`duration` goes with `cron`"),
        ({"cron": "0 18 * * 5", "duration": "1h", "until": "x"}, "unknown key(s): until"),
    ],
)
def test_an_invalid_window_is_refused_with_what_is_wrong(raw: dict[str, object], message: str):
    with pytest.raises(FreezeError, match=None) as caught:
        parse_windows([raw], "freeze")
    assert message in str(caught.value) and str(caught.value).startswith("freeze[0]"), str(caught.value)


def test_repository_and_operator_windows_are_validated_where_they_are_written():
    text = "environments:\n- {name: prod, path: p, cluster: c, freeze: [{cron: '0 18 * * 5'}]}\n"
    with pytest.raises(repoconfig.RepoConfigError, match=r"environment 'prod'.freeze\[0\].duration is required"):
        repoconfig.parse(text)
    operator = policy.parse(
        "rules: [{repositories: ['*'], clusters: ['*']}]\n"
        "freezes: [{repositories: ['github:acme/*'], clusters: [prod], cron: '0 16 * * 5', duration: 64h}]\n"
    )
    assert len(operator.freezes_for("github", "acme/shop", "prod")) == 1
    assert operator.freezes_for("github", "acme/shop", "staging") == ()
    assert operator.freezes_for("gitlab", "acme/shop", "prod") == ()
    with pytest.raises(policy.PolicyError, match=r"freezes\[0\].timezone"):
        policy.parse("rules: []\nfreezes: [{cron: '0 16 * * 5', duration: 1h, timezone: Nowhere}]\n")
