"""Entry schedules: next entry, windows, once-per-window entries, planned exits, DST and
timezone edges, and settings errors that name the field and the bad value.

Expected instants are written as UTC ISO strings (checked against GNU date / tzdata) and,
where it helps, as raw epoch seconds."""

from __future__ import annotations

import tomllib
from datetime import datetime, timezone

import pytest
from pydantic import ValidationError

from services.rules.schedule import (ScheduleConfig, Window, entry_due, next_entry, planned_exit, session_bounds,
                                     window_at, window_of)

WEEKDAYS_ONLY = ["mon", "tue", "wed", "thu", "fri"]


def at(iso: str) -> float:
    """'2026-01-01T09:30Z' -> epoch seconds."""
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def iso(t: float | None) -> str | None:
    return None if t is None else datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def sched(**kw) -> ScheduleConfig:
    return ScheduleConfig.model_validate(kw)


def test_at_helper_matches_known_epochs():
    assert at("2026-01-01T00:00Z") == 1_767_225_600.0  # tests/conftest.py T0, a Thursday
    assert at("2026-03-08T07:00Z") == 1_772_953_200.0
    assert at("2026-11-01T05:30Z") == 1_793_511_000.0


# --- next entry --------------------------------------------------------------------------


def test_next_entry_later_today():
    cfg = sched(entry_times=["09:30"])
    assert next_entry(cfg, at("2026-01-01T00:00Z")) == 1_767_259_800.0  # 2026-01-01T09:30Z


def test_next_entry_at_the_entry_instant_is_now():
    cfg = sched(entry_times=["09:30"])
    assert next_entry(cfg, at("2026-01-01T09:30Z")) == at("2026-01-01T09:30Z")
    assert iso(next_entry(cfg, at("2026-01-01T09:30Z") + 0.001)) == "2026-01-02T09:30:00Z"


def test_next_entry_tomorrow_when_todays_time_has_passed():
    cfg = sched(entry_times=["09:30"])
    assert next_entry(cfg, at("2026-01-01T10:00Z")) == 1_767_346_200.0  # 2026-01-02T09:30Z


def test_next_entry_skips_the_weekend():
    cfg = sched(entry_times=["09:30"], weekdays=WEEKDAYS_ONLY)
    # Friday 2026-01-02 10:00 -> Monday 2026-01-05 09:30
    assert next_entry(cfg, at("2026-01-02T10:00Z")) == 1_767_605_400.0
    assert iso(next_entry(cfg, at("2026-01-03T12:00Z"))) == "2026-01-05T09:30:00Z"  # from Saturday


def test_next_entry_single_weekday_a_week_ahead():
    cfg = sched(entry_times=["09:30"], weekdays=["thu"])
    assert iso(next_entry(cfg, at("2026-01-01T09:31Z"))) == "2026-01-08T09:30:00Z"


def test_several_entry_times_are_sorted_and_deduped():
    cfg = sched(entry_times=["14:00", "9:30", "09:30"])
    assert cfg.entry_times == ["09:30", "14:00"]
    assert next_entry(cfg, at("2026-01-01T10:00Z")) == 1_767_276_000.0  # 2026-01-01T14:00Z
    assert iso(next_entry(cfg, at("2026-01-01T14:00:01Z"))) == "2026-01-02T09:30:00Z"


# --- windows and once-per-window entries -----------------------------------------------------


def test_window_end_closes_the_window():
    cfg = sched(entry_times=["09:30"], entry_window_end="11:00")
    assert window_of(cfg, at("2026-01-01T09:29:59Z")) is None
    assert window_of(cfg, at("2026-01-01T09:30Z")) == at("2026-01-01T09:30Z")
    assert window_of(cfg, at("2026-01-01T10:59:59Z")) == at("2026-01-01T09:30Z")
    assert window_of(cfg, at("2026-01-01T11:00Z")) is None  # half-open: no entry at the end
    assert window_at(cfg, at("2026-01-01T10:00Z")) == Window(at("2026-01-01T09:30Z"), at("2026-01-01T11:00Z"))
    assert entry_due(cfg, at("2026-01-01T11:00Z"), None) is None
    assert entry_due(cfg, at("2026-01-01T23:00Z"), None) is None


def test_without_window_end_a_window_lasts_until_the_next_entry_time():
    cfg = sched(entry_times=["09:30", "14:00"], weekdays=WEEKDAYS_ONLY)
    assert window_of(cfg, at("2026-01-01T13:59:59Z")) == at("2026-01-01T09:30Z")
    assert window_of(cfg, at("2026-01-01T14:00Z")) == at("2026-01-01T14:00Z")
    assert window_of(cfg, at("2026-01-02T09:00Z")) == at("2026-01-01T14:00Z")  # overnight
    # Friday's last window runs over the weekend to Monday's first entry time
    assert window_at(cfg, at("2026-01-03T12:00Z")) == Window(at("2026-01-02T14:00Z"), at("2026-01-05T09:30Z"))


def test_entry_due_once_per_window():
    cfg = sched(entry_times=["09:30"], entry_window_end="11:00")
    start = at("2026-01-01T09:30Z")
    assert entry_due(cfg, at("2026-01-01T09:29Z"), None) is None
    assert entry_due(cfg, start, None) == start
    assert entry_due(cfg, at("2026-01-01T09:45Z"), None) == start  # still due: entry not made yet
    entered = at("2026-01-01T09:45Z")
    assert entry_due(cfg, at("2026-01-01T09:50Z"), entered) is None  # used
    assert entry_due(cfg, at("2026-01-01T10:59Z"), entered) is None
    # an entry in yesterday's window does not use today's
    assert entry_due(cfg, at("2026-01-02T09:30Z"), entered) == at("2026-01-02T09:30Z")


def test_entry_due_with_overlapping_windows_takes_the_latest():
    cfg = sched(entry_times=["09:30", "10:30"], entry_window_end="11:00")
    entered = at("2026-01-01T09:35Z")
    assert entry_due(cfg, at("2026-01-01T10:29Z"), entered) is None
    assert entry_due(cfg, at("2026-01-01T10:30Z"), entered) == at("2026-01-01T10:30Z")
    assert window_at(cfg, at("2026-01-01T10:40Z")) == Window(at("2026-01-01T10:30Z"), at("2026-01-01T11:00Z"))
    assert entry_due(cfg, at("2026-01-01T10:45Z"), at("2026-01-01T10:31Z")) is None


def test_missed_window_is_not_made_up_after_it_ends():
    cfg = sched(entry_times=["09:30"], entry_window_end="10:00", weekdays=WEEKDAYS_ONLY)
    assert entry_due(cfg, at("2026-01-02T10:00Z"), None) is None
    assert entry_due(cfg, at("2026-01-03T09:45Z"), None) is None  # Saturday: no window
    assert iso(next_entry(cfg, at("2026-01-02T10:00Z"))) == "2026-01-05T09:30:00Z"


def test_without_window_end_a_fresh_start_is_due_at_once():
    cfg = sched(entry_times=["09:30"])
    assert entry_due(cfg, at("2026-01-01T20:00Z"), None) == at("2026-01-01T09:30Z")


# --- planned exit -------------------------------------------------------------------------


def test_planned_exit_time_same_day():
    cfg = sched(entry_times=["09:30"], exit_time="16:00")
    assert iso(planned_exit(cfg, at("2026-01-01T09:30Z"))) == "2026-01-01T16:00:00Z"
    assert iso(planned_exit(cfg, at("2026-01-01T09:31:07Z"))) == "2026-01-01T16:00:00Z"


def test_planned_exit_time_next_day_when_earlier_than_the_entry():
    cfg = sched(entry_times=["22:00"], exit_time="09:00")
    assert iso(planned_exit(cfg, at("2026-01-01T22:00Z"))) == "2026-01-02T09:00:00Z"
    same = sched(entry_times=["09:00"], exit_time="09:00")  # equal: a full day later
    assert iso(planned_exit(same, at("2026-01-01T09:00Z"))) == "2026-01-02T09:00:00Z"


def test_planned_exit_time_ignores_weekdays():
    cfg = sched(entry_times=["22:00"], weekdays=["fri"], exit_time="09:00")
    assert iso(planned_exit(cfg, at("2026-01-02T22:00Z"))) == "2026-01-03T09:00:00Z"  # a Saturday


def test_planned_exit_by_duration_and_none():
    assert planned_exit(sched(entry_times=["09:30"], exit_after_s=5400), 1_767_259_800.0) == 1_767_265_200.0
    assert planned_exit(sched(entry_times=["09:30"]), 1_767_259_800.0) is None


def test_a_weekly_window_without_an_end_lasts_until_it_opens_again():
    cfg = sched(entry_times=["23:59"], weekdays=["mon"])
    # Monday 2026-01-05 00:00: still in the window Monday 2025-12-29 23:59 opened, eight dates back
    assert window_at(cfg, at("2026-01-05T00:00Z")) == Window(at("2025-12-29T23:59Z"), at("2026-01-05T23:59Z"))
    assert next_entry(cfg, at("2025-12-29T23:59:30Z")) == at("2026-01-05T23:59Z")


# --- DST: America/New_York (2026-03-08 02:00 EST -> 03:00 EDT; 2026-11-01 02:00 EDT -> 01:00 EST) ---


NY = "America/New_York"


def test_ny_spring_forward_gap_maps_to_the_end_of_the_gap():
    cfg = sched(entry_times=["02:30"], timezone=NY)
    # 02:30 does not exist on 2026-03-08: the entry is at 03:00 EDT = 07:00Z
    assert next_entry(cfg, at("2026-03-08T05:00Z")) == 1_772_953_200.0
    # and the next day it is 02:30 EDT again = 06:30Z
    assert next_entry(cfg, 1_772_953_200.5) == 1_773_037_800.0


def test_ny_every_time_inside_the_gap_maps_to_the_transition():
    transition = at("2026-03-08T07:00Z")  # 03:00 EDT
    for minute in range(60):
        cfg = sched(entry_times=[f"02:{minute:02d}"], timezone=NY)
        assert next_entry(cfg, at("2026-03-08T05:00Z")) == transition, minute


def test_ny_times_inside_the_gap_share_one_window():
    cfg = sched(entry_times=["02:15", "02:45"], timezone=NY)
    assert next_entry(cfg, at("2026-03-08T05:00Z")) == at("2026-03-08T07:00Z")
    assert iso(next_entry(cfg, at("2026-03-08T07:00:01Z"))) == "2026-03-09T06:15:00Z"  # 02:15 EDT
    assert window_at(cfg, at("2026-03-08T12:00Z")) == Window(at("2026-03-08T07:00Z"), at("2026-03-09T06:15Z"))


def test_ny_window_wholly_inside_the_gap_does_not_open():
    cfg = sched(entry_times=["02:15"], entry_window_end="02:45", timezone=NY)
    assert next_entry(cfg, at("2026-03-08T05:00Z")) == 1_773_036_900.0  # 2026-03-09 02:15 EDT
    assert window_of(cfg, at("2026-03-08T07:00Z")) is None
    assert entry_due(cfg, at("2026-03-08T07:00Z"), None) is None


def test_ny_window_end_after_the_gap_is_shortened_in_real_time():
    cfg = sched(entry_times=["01:30"], entry_window_end="03:30", timezone=NY)
    # 01:30 EST = 06:30Z, 03:30 EDT = 07:30Z: one real hour, not two
    assert window_at(cfg, at("2026-03-08T07:00Z")) == Window(at("2026-03-08T06:30Z"), at("2026-03-08T07:30Z"))


def test_ny_countdown_across_spring_forward_is_real_seconds():
    cfg = sched(entry_times=["09:30"], timezone=NY)
    now = at("2026-03-07T17:00Z")  # Sat 12:00 EST
    entry = next_entry(cfg, now)
    assert entry == 1_772_976_600.0  # Sun 2026-03-08 09:30 EDT = 13:30Z
    assert entry - now == 20.5 * 3600  # 21.5 wall-clock hours, 20.5 real ones


def test_ny_fall_back_ambiguous_time_uses_the_first_occurrence_once():
    cfg = sched(entry_times=["01:30"], timezone=NY)
    first = next_entry(cfg, at("2026-11-01T04:00Z"))  # from 00:00 EDT
    assert first == 1_793_511_000.0  # 01:30 EDT = 05:30Z
    # the second 01:30 (EST, 06:30Z) is not an entry: the next one is the day after
    assert next_entry(cfg, first + 1) == 1_793_601_000.0  # 2026-11-02 01:30 EST = 06:30Z
    assert window_of(cfg, at("2026-11-01T06:30Z")) == first
    assert entry_due(cfg, at("2026-11-01T06:30Z"), first) is None


def test_ny_fall_back_window_end_in_the_repeated_hour():
    cfg = sched(entry_times=["01:30"], entry_window_end="01:45", timezone=NY)
    assert window_at(cfg, at("2026-11-01T05:40Z")) == Window(at("2026-11-01T05:30Z"), at("2026-11-01T05:45Z"))
    assert window_of(cfg, at("2026-11-01T06:35Z")) is None  # 01:35 EST, the second pass
    assert entry_due(cfg, at("2026-11-01T06:35Z"), None) is None


def test_ny_countdown_across_fall_back_is_real_seconds():
    cfg = sched(entry_times=["09:30"], timezone=NY)
    now = at("2026-10-31T14:30Z")  # Sat 10:30 EDT
    assert next_entry(cfg, now) == at("2026-11-01T14:30Z")  # Sun 09:30 EST
    assert next_entry(cfg, now) - now == 24 * 3600  # 23 wall-clock hours, 24 real ones


def test_ny_planned_exit_across_dst():
    by_time = sched(entry_times=["01:00"], exit_time="04:00", timezone=NY)
    entered = at("2026-03-08T06:00Z")  # 01:00 EST
    assert planned_exit(by_time, entered) == at("2026-03-08T08:00Z")  # 04:00 EDT: 2 real hours
    in_gap = sched(entry_times=["01:00"], exit_time="02:30", timezone=NY)
    assert planned_exit(in_gap, entered) == at("2026-03-08T07:00Z")
    by_duration = sched(entry_times=["01:00"], exit_after_s=3 * 3600, timezone=NY)
    assert planned_exit(by_duration, entered) == at("2026-03-08T09:00Z")  # 05:00 EDT on the wall
    fall = sched(entry_times=["01:10"], exit_time="01:30", timezone=NY)
    assert planned_exit(fall, at("2026-11-01T05:10Z")) == at("2026-11-01T05:30Z")  # first 01:30
    # entered in the second 01:xx hour (EST): the first 01:30 has passed, exit the next day
    assert planned_exit(fall, at("2026-11-01T06:10Z")) == at("2026-11-02T06:30Z")


# --- DST: Europe/London (2026-03-29 01:00 GMT -> 02:00 BST; 2026-10-25 02:00 BST -> 01:00 GMT) ---


LON = "Europe/London"


def test_london_spring_forward_gap():
    cfg = sched(entry_times=["01:30"], timezone=LON)
    assert next_entry(cfg, at("2026-03-29T00:00Z")) == 1_774_746_000.0  # 02:00 BST = 01:00Z
    assert iso(next_entry(cfg, at("2026-03-29T01:00:01Z"))) == "2026-03-30T00:30:00Z"  # 01:30 BST


def test_london_fall_back_first_occurrence_once():
    cfg = sched(entry_times=["01:30"], timezone=LON)
    first = next_entry(cfg, at("2026-10-24T23:00Z"))
    assert first == 1_792_888_200.0  # 01:30 BST = 00:30Z
    assert next_entry(cfg, first + 1) == 1_792_978_200.0  # 2026-10-26 01:30 GMT = 01:30Z


def test_london_countdown_across_spring_forward():
    cfg = sched(entry_times=["08:00"], timezone=LON)
    now = 1_774_684_800.0 + 3600  # Sat 2026-03-28 09:00 GMT
    assert next_entry(cfg, now) == 1_774_767_600.0  # Sun 08:00 BST = 07:00Z
    assert next_entry(cfg, now) - now == 22 * 3600  # 23 wall-clock hours, 22 real ones


# --- far from UTC: the local weekday is not UTC's --------------------------------------------


def test_tokyo_monday_morning_is_sunday_in_utc():
    cfg = sched(entry_times=["08:30"], weekdays=["mon"], timezone="Asia/Tokyo", entry_window_end="09:00")
    entry = next_entry(cfg, at("2026-01-01T00:00Z"))
    assert entry == 1_767_569_400.0  # Mon 2026-01-05 08:30 JST = Sun 2026-01-04 23:30Z
    assert datetime.fromtimestamp(entry, timezone.utc).strftime("%a") == "Sun"
    assert window_of(cfg, at("2026-01-04T23:45Z")) == entry
    # Monday 08:30 UTC is Monday 17:30 JST: outside the window
    assert window_of(cfg, at("2026-01-05T08:30Z")) is None
    # the 09:30 JST example from the brief is the same UTC day (00:30Z Monday)
    later = sched(entry_times=["09:30"], weekdays=["mon"], timezone="Asia/Tokyo")
    assert iso(next_entry(later, at("2026-01-01T00:00Z"))) == "2026-01-05T00:30:00Z"


def test_auckland_friday_morning_is_thursday_in_utc():
    cfg = sched(entry_times=["07:00"], weekdays=["fri"], timezone="Pacific/Auckland")
    # Thu 2026-01-01 00:00Z is Thu 13:00 NZDT: Friday 07:00 NZDT is Thu 18:00Z, the same UTC day
    assert next_entry(cfg, at("2026-01-01T00:00Z")) == 1_767_290_400.0


def test_auckland_weekend_in_local_time():
    cfg = sched(entry_times=["07:00"], weekdays=WEEKDAYS_ONLY, timezone="Pacific/Auckland")
    # Fri 2026-01-02 20:00Z is already Saturday 09:00 NZDT: next is Mon 07:00 NZDT = Sun 18:00Z
    assert next_entry(cfg, at("2026-01-02T20:00Z")) == 1_767_549_600.0
    # Mon 2026-01-05 12:00Z is Tue 01:00 NZDT: next is Tue 07:00 NZDT = Mon 18:00Z
    assert iso(next_entry(cfg, at("2026-01-05T12:00Z"))) == "2026-01-05T18:00:00Z"


def test_auckland_spring_forward_gap():
    # 2026-09-27 02:00 NZST -> 03:00 NZDT; 02:30 maps to 03:00 NZDT = 2026-09-26T14:00Z
    cfg = sched(entry_times=["02:30"], timezone="Pacific/Auckland")
    assert next_entry(cfg, at("2026-09-26T12:00Z")) == 1_790_431_200.0


def test_date_line_skipped_day():
    # Samoa skipped 2011-12-30 entirely: its 09:00 maps to the end of the gap (31 Dec 00:00 local)
    cfg = sched(entry_times=["09:00"], timezone="Pacific/Apia")
    assert iso(next_entry(cfg, at("2011-12-29T12:00Z"))) == "2011-12-29T19:00:00Z"  # 29 Dec 09:00 -10
    assert iso(next_entry(cfg, at("2011-12-29T19:00:01Z"))) == "2011-12-30T10:00:00Z"
    assert iso(next_entry(cfg, at("2011-12-30T10:00:01Z"))) == "2011-12-30T19:00:00Z"  # 31 Dec 09:00 +14
    # at the transition itself the skipped day's window opens: now, though it is already 31 Dec there
    assert next_entry(cfg, at("2011-12-30T10:00Z")) == at("2011-12-30T10:00Z")


# --- the trading day (session_bounds) ---------------------------------------------------------


def test_the_trading_day_runs_from_one_session_start_to_the_next():
    assert session_bounds(at("2026-01-01T12:00Z"), "00:00", "UTC") == (at("2026-01-01T00:00Z"), at("2026-01-02T00:00Z"))
    # 09:30 New York: at 08:00 EST it is still yesterday's session; at 09:30 exactly today's begins
    yesterday = (at("2026-01-01T14:30Z"), at("2026-01-02T14:30Z"))
    assert session_bounds(at("2026-01-02T13:00Z"), "09:30", NY) == yesterday
    assert session_bounds(at("2026-01-02T14:29:59Z"), "09:30", NY) == yesterday
    assert session_bounds(at("2026-01-02T14:30Z"), "09:30", NY) == (at("2026-01-02T14:30Z"), at("2026-01-03T14:30Z"))


def test_a_trading_day_lasts_23_or_25_hours_across_dst():
    spring = session_bounds(at("2026-03-08T12:00Z"), "00:00", NY)
    assert spring == (at("2026-03-08T05:00Z"), at("2026-03-09T04:00Z"))
    fall = session_bounds(at("2026-11-01T12:00Z"), "00:00", NY)
    assert fall == (at("2026-11-01T04:00Z"), at("2026-11-02T05:00Z"))
    assert (spring[1] - spring[0], fall[1] - fall[0]) == (23 * 3600, 25 * 3600)


# --- configuration ---------------------------------------------------------------------------


def test_normalisation_and_defaults():
    cfg = sched(entry_times="9:05", weekdays=["FRI", "Monday", "mon"], timezone=" Europe/Paris ")
    assert cfg.entry_times == ["09:05"]
    assert cfg.weekdays == ["mon", "fri"]
    assert cfg.timezone == "Europe/Paris"
    assert cfg.zone.key == "Europe/Paris"
    default = sched(entry_times=["00:00"])
    assert default.weekdays == ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    assert default.timezone == "UTC"
    assert default.entry_window_end is default.exit_time is default.exit_after_s is None


@pytest.mark.parametrize(("every", "count", "first", "last"), [
    (1, 1440, ["00:00", "00:01"], ["23:58", "23:59"]), (60, 24, ["00:00", "01:00"], ["22:00", "23:00"]),
    (90, 16, ["00:00", "01:30"], ["21:00", "22:30"]), (720, 2, ["00:00", "12:00"], ["00:00", "12:00"]),
])
def test_every_minutes_opens_a_window_that_often_from_midnight(every, count, first, last):
    times = sched(every_minutes=every).entry_times
    assert (len(times), times[:2], times[-2:]) == (count, first, last)


@pytest.mark.parametrize("bad", [0, 721, -15, "often"])
def test_every_minutes_out_of_range_names_the_field(bad):
    with pytest.raises(ValidationError) as info:
        sched(every_minutes=bad)
    assert ("every_minutes",) in [e["loc"] for e in info.value.errors()]


def test_every_minutes_and_entry_times_are_exclusive():
    _, msg = only_error(every_minutes=15, entry_times=["09:30"])
    assert "set either entry_times or every_minutes, not both" in msg


def test_toml_local_times_are_accepted():
    data = tomllib.loads('entry_times = [09:30:00, "14:00"]\nentry_window_end = 15:00:00')
    cfg = ScheduleConfig.model_validate(data)
    assert cfg.entry_times == ["09:30", "14:00"]
    assert cfg.entry_window_end == "15:00"


def test_frozen_and_no_unknown_fields():
    cfg = sched(entry_times=["09:30"])
    with pytest.raises(ValidationError):
        cfg.timezone = "Asia/Tokyo"  # type: ignore[misc]
    with pytest.raises(ValidationError) as info:
        sched(entry_times=["09:30"], exit_at="10:00")
    assert info.value.errors()[0]["loc"] == ("exit_at",)
    assert info.value.errors()[0]["type"] == "extra_forbidden"


def only_error(**kw) -> tuple[tuple, str]:
    with pytest.raises(ValidationError) as info:
        sched(**kw)
    errors = info.value.errors()
    assert len(errors) == 1, errors
    return errors[0]["loc"], errors[0]["msg"]


def test_unknown_timezone_names_field_and_value():
    loc, msg = only_error(entry_times=["09:30"], timezone="Europe/Pariss")
    assert loc == ("timezone",)
    assert "unknown timezone 'Europe/Pariss' (use an IANA name like Europe/Paris)" in msg


@pytest.mark.parametrize("bad", ["", "EST+5", "../../etc/passwd", "Mars/Olympus", 5, None])
def test_other_bad_timezones(bad):
    loc, msg = only_error(entry_times=["09:30"], timezone=bad)
    assert loc == ("timezone",)
    assert f"unknown timezone {bad!r}" in msg


@pytest.mark.parametrize("typo", ["tues", "mnday", "thurs", "", "weekend"])
def test_weekday_typo_names_the_value_and_lists_valid_ones(typo):
    loc, msg = only_error(entry_times=["09:30"], weekdays=["mon", typo])
    assert loc == ("weekdays", 1)
    assert f"unknown weekday {typo!r}" in msg
    assert "mon, tue, wed, thu, fri, sat, sun" in msg


def test_empty_weekdays_and_entry_times():
    assert only_error(entry_times=["09:30"], weekdays=[])[0] == ("weekdays",)
    assert only_error(entry_times=[])[0] == ("entry_times",)
    assert only_error()[0] == ("entry_times",)


@pytest.mark.parametrize("bad", ["25:61", "24:00", "9", "09:60", "9.30", "09:30:00", "noon"])
def test_bad_entry_time_names_field_index_and_value(bad):
    loc, msg = only_error(entry_times=["08:00", bad])
    assert loc == ("entry_times", 1)
    assert repr(bad) in msg and "HH:MM" in msg


def test_bad_exit_time_and_window_end():
    assert only_error(entry_times=["09:30"], exit_time="25:61")[0] == ("exit_time",)
    loc, msg = only_error(entry_times=["09:30"], entry_window_end="7pm")
    assert loc == ("entry_window_end",) and "'7pm'" in msg


@pytest.mark.parametrize("end", ["09:00", "09:30"])
def test_window_end_before_the_entry_time(end):
    loc, msg = only_error(entry_times=["09:30"], entry_window_end=end)
    assert loc == ("entry_window_end",)
    assert f"entry_window_end {end} must be later than every entry time (09:30 is not)" in msg


def test_window_end_before_a_later_entry_time():
    loc, msg = only_error(entry_times=["09:30", "12:00", "13:00"], entry_window_end="11:00")
    assert loc == ("entry_window_end",)
    assert "(12:00, 13:00 are not)" in msg


def test_a_window_end_given_as_none_is_no_window_end():
    assert sched(entry_times=["09:30"], entry_window_end=None).entry_window_end is None


def test_a_bad_entry_time_with_a_window_end_is_named_alone():
    assert only_error(entry_times=["25:00"], entry_window_end="10:00")[0] == ("entry_times", 0)


def test_both_exit_rules():
    loc, msg = only_error(entry_times=["09:30"], exit_time="16:00", exit_after_s=3600)
    assert loc == ("exit_after_s",)
    assert "exit_time" in msg and "exit_after_s" in msg and "not both" in msg


@pytest.mark.parametrize("bad", [0, -5, float("inf"), float("nan")])
def test_exit_after_must_be_positive_and_finite(bad):
    assert only_error(entry_times=["09:30"], exit_after_s=bad)[0] == ("exit_after_s",)


def test_any_positive_exit_after_is_a_planned_exit():
    assert planned_exit(sched(entry_times=["09:30"], exit_after_s=0.5), at("2026-01-01T09:30Z")) == at("2026-01-01T09:30Z") + 0.5


def test_planned_exit_uses_the_local_day_not_utcs():
    cfg = sched(entry_times=["22:00"], exit_time="23:00", timezone=NY)
    # 22:00 EDT on 2026-06-01 is already 2026-06-02 in UTC; the exit is the same local evening
    assert planned_exit(cfg, at("2026-06-02T02:00Z")) == at("2026-06-02T03:00Z")
    tokyo = sched(entry_times=["08:00"], exit_time="08:30", timezone="Asia/Tokyo")
    # 08:00 JST on Monday 2026-01-05 is Sunday in UTC
    assert planned_exit(tokyo, at("2026-01-04T23:00Z")) == at("2026-01-04T23:30Z")
