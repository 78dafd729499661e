"""Deadlines: business calendar, packet / supplement / information-request due times, time left."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from zoneinfo import ZoneInfo

import holidays
import pytest

from packet.model.case import CaseFacts, InfoRequest, Person
from packet.config import Calendar
from packet.model.deadlines import (add_business_days, calendar_description, duration_text, info_request_deadline,
                              is_business_day, packet_deadline, supplement_deadline,
                              time_left_text)
from packet.model.models import Deadline

LA = ZoneInfo("America/Los_Angeles")


def facts(notice: dt.datetime, review_type: str = "standard") -> CaseFacts:
    return CaseFacts(case_id="IMR-2026-000417", review_type=review_type,
                     dispute_type="medical_necessity", dmhc_notice_received=notice,
                     disputed_service="Lumbar spinal fusion", language="en",
                     member=Person(name="Rosalind Q. Testmember", member_id="M998877665",
                                   date_of_birth=dt.date(1961, 4, 9)),
                     provider=None)


def with_calendar(config, **changes):
    return replace(config, calendar=replace(config.calendar, **changes))


def elapsed(later: dt.datetime, earlier: dt.datetime) -> dt.timedelta:
    """Real elapsed time (Python subtracts wall-clock times when both share one tzinfo)."""
    return later.astimezone(dt.timezone.utc) - earlier.astimezone(dt.timezone.utc)


def end_of(day: dt.date, tz=LA) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(23, 59, 59), tzinfo=tz)


def test_thanksgiving_and_day_after_are_holidays(config):
    assert not is_business_day(dt.date(2026, 11, 26), config)
    assert not is_business_day(dt.date(2026, 11, 27), config)
    assert not is_business_day(dt.date(2027, 11, 25), config)
    assert not is_business_day(dt.date(2027, 11, 26), config)
    assert is_business_day(dt.date(2026, 11, 25), config)
    assert not is_business_day(dt.date(2026, 11, 28), config)  # Saturday


def test_package_itself_lists_day_after_thanksgiving():
    # If this fails, packet.model.deadlines still adds the day (see _holidays_of_year), but the
    # calendar description should then say so: look at it again.
    base = holidays.country_holidays("US", subdiv="CA", years=2026)
    assert dt.date(2026, 11, 26) in base
    assert dt.date(2026, 11, 27) in base


def test_notice_wednesday_before_thanksgiving_due_next_wednesday(config):
    notice = dt.datetime(2026, 11, 25, 16, 10, tzinfo=dt.timezone(dt.timedelta(hours=-8)))
    deadline = packet_deadline(facts(notice), config)
    assert deadline.due == end_of(dt.date(2026, 12, 2))
    assert deadline.due.weekday() == 2  # Wednesday
    assert deadline.review_type == "standard"
    assert deadline.clock_start == notice
    assert "3 business days" in deadline.rule and "1374.30(n)" in deadline.rule


def test_notice_day_does_not_count_even_on_a_business_day(config):
    # Monday 2026-11-02 09:00 -> Tue, Wed, Thu: due Thursday 2026-11-05 end of day.
    notice = dt.datetime(2026, 11, 2, 9, 0, tzinfo=LA)
    assert packet_deadline(facts(notice), config).due == end_of(dt.date(2026, 11, 5))


def test_friday_notice_skips_the_weekend(config):
    notice = dt.datetime(2026, 10, 16, 15, 0, tzinfo=LA)  # Friday
    assert packet_deadline(facts(notice), config).due == end_of(dt.date(2026, 10, 21))  # Wednesday


@pytest.mark.parametrize("notice_day", [dt.date(2026, 10, 17), dt.date(2026, 10, 18)])
def test_weekend_notice_counts_from_monday(config, notice_day):
    notice = dt.datetime.combine(notice_day, dt.time(11, 0), tzinfo=LA)
    assert packet_deadline(facts(notice), config).due == end_of(dt.date(2026, 10, 21))


def test_holiday_notice(config):
    # Christmas 2026 is a Friday: Mon 28, Tue 29, Wed 30.
    notice = dt.datetime(2026, 12, 25, 10, 0, tzinfo=LA)
    assert packet_deadline(facts(notice), config).due == end_of(dt.date(2026, 12, 30))


def test_new_year_is_crossed(config):
    # Wednesday 2026-12-30: Thu 31, (Fri 1 Jan holiday), Mon 4, Tue 5.
    notice = dt.datetime(2026, 12, 30, 10, 0, tzinfo=LA)
    assert packet_deadline(facts(notice), config).due == end_of(dt.date(2027, 1, 5))


def test_notice_in_utc_is_counted_on_the_plans_local_day(config):
    # 2026-11-03 06:00 UTC is Monday 2026-11-02 22:00 in Los Angeles: Tue, Wed, Thu.
    notice = dt.datetime(2026, 11, 3, 6, 0, tzinfo=dt.timezone.utc)
    deadline = packet_deadline(facts(notice), config)
    assert deadline.due == end_of(dt.date(2026, 11, 5))
    assert deadline.clock_start.tzinfo == LA and deadline.clock_start.hour == 22


def test_expedited_is_24_elapsed_hours_across_dst_end(config):
    # DST ends 2026-11-01 at 02:00 PDT: a day that lasts 25 hours.
    notice = dt.datetime(2026, 11, 1, 0, 30, tzinfo=LA)
    deadline = packet_deadline(facts(notice, "expedited"), config)
    assert elapsed(deadline.due, notice) == dt.timedelta(hours=24)
    assert (deadline.due.date(), deadline.due.hour, deadline.due.minute) == (dt.date(2026, 11, 1), 23, 30)
    assert deadline.due.utcoffset() == dt.timedelta(hours=-8)
    assert "24 hours" in deadline.rule


def test_expedited_is_24_elapsed_hours_across_dst_start(config):
    # DST starts 2026-03-08 at 02:00 PST: a day that lasts 23 hours.
    notice = dt.datetime(2026, 3, 7, 12, 0, tzinfo=LA)
    deadline = packet_deadline(facts(notice, "expedited"), config)
    assert elapsed(deadline.due, notice) == dt.timedelta(hours=24)
    assert deadline.due.hour == 13 and deadline.due.utcoffset() == dt.timedelta(hours=-7)


def test_expedited_ignores_holidays(config):
    notice = dt.datetime(2026, 11, 25, 16, 10, tzinfo=LA)
    due = packet_deadline(facts(notice, "expedited"), config).due
    assert due == dt.datetime(2026, 11, 26, 16, 10, tzinfo=LA)


def test_extra_holidays_push_the_date_later(config):
    notice = dt.datetime(2026, 11, 2, 9, 0, tzinfo=LA)
    adjusted = with_calendar(config, extra_holidays=(dt.date(2026, 11, 4),))
    assert packet_deadline(facts(notice), adjusted).due == end_of(dt.date(2026, 11, 6))
    assert packet_deadline(facts(notice), config).due == end_of(dt.date(2026, 11, 5))


def test_not_holidays_pull_the_date_earlier(config):
    # Susan B. Anthony Day (Sun 2026-02-15) is in the package but not a California holiday;
    # Presidents' Day (Mon 2026-02-16) removed here to show the effect on a weekday.
    notice = dt.datetime(2026, 2, 13, 9, 0, tzinfo=LA)  # Friday
    assert packet_deadline(facts(notice), config).due == end_of(dt.date(2026, 2, 19))
    adjusted = with_calendar(config, not_holidays=(dt.date(2026, 2, 16),))
    assert packet_deadline(facts(notice), adjusted).due == end_of(dt.date(2026, 2, 18))


def test_not_holidays_can_remove_the_day_after_thanksgiving(config):
    adjusted = with_calendar(config, not_holidays=(dt.date(2026, 11, 27),))
    notice = dt.datetime(2026, 11, 25, 16, 10, tzinfo=LA)
    assert packet_deadline(facts(notice), adjusted).due == end_of(dt.date(2026, 12, 1))


def test_calendar_description_names_package_adjustments_and_zone(config):
    plain = calendar_description(config)
    assert f"holidays {holidays.__version__} US-CA" in plain
    assert "America/Los_Angeles" in plain
    assert "plus" not in plain and "minus" not in plain
    adjusted = with_calendar(config, extra_holidays=(dt.date(2026, 12, 31), dt.date(2026, 12, 24)),
                             not_holidays=(dt.date(2026, 2, 15),))
    text = calendar_description(adjusted)
    assert "plus 2026-12-24, 2026-12-31" in text
    assert "minus 2026-02-15" in text
    deadline = packet_deadline(facts(dt.datetime(2026, 11, 2, 9, 0, tzinfo=LA)), adjusted)
    assert deadline.calendar == text


def test_other_time_zone(config):
    ny = with_calendar(config, timezone="America/New_York")
    # 2026-11-02 23:30 in Los Angeles is Tuesday 02:30 in New York: Wed, Thu, Fri.
    notice = dt.datetime(2026, 11, 2, 23, 30, tzinfo=LA)
    deadline = packet_deadline(facts(notice), ny)
    assert deadline.due == end_of(dt.date(2026, 11, 6), ZoneInfo("America/New_York"))
    assert "America/New_York" in deadline.calendar


def test_all_times_are_aware_and_in_the_plan_zone(config):
    notice = dt.datetime(2026, 11, 25, 16, 10, tzinfo=dt.timezone.utc)
    f = facts(notice)
    for deadline in (packet_deadline(f, config), packet_deadline(replace(f, review_type="expedited"), config),
                     supplement_deadline(notice, f, config),
                     info_request_deadline(InfoRequest(received=notice, what="x"), f, config)):
        for moment in (deadline.clock_start, deadline.due):
            assert moment.tzinfo is not None
            assert moment.tzinfo == LA


def test_naive_times_are_refused(config):
    with pytest.raises(ValueError):
        packet_deadline(facts(dt.datetime(2026, 11, 25, 16, 10)), config)


def test_supplement_is_24_hours_from_receipt(config):
    f = facts(dt.datetime(2026, 11, 2, 9, 0, tzinfo=LA))
    received = dt.datetime(2026, 11, 25, 16, 10, tzinfo=LA)  # holidays do not matter
    deadline = supplement_deadline(received, f, config)
    assert deadline.clock_start == received
    assert deadline.due == dt.datetime(2026, 11, 26, 16, 10, tzinfo=LA)
    assert "1 day" in deadline.rule


def test_info_request_routine_is_5_business_days(config):
    f = facts(dt.datetime(2026, 11, 2, 9, 0, tzinfo=LA))
    request = InfoRequest(received=dt.datetime(2026, 11, 24, 9, 0, tzinfo=LA), what="PT notes")
    # Tue 24: Wed 25, (Thanksgiving, day after, weekend) Mon 30, Tue 1, Wed 2, Thu 3.
    deadline = info_request_deadline(request, f, config)
    assert deadline.due == end_of(dt.date(2026, 12, 3))
    assert "5 business days" in deadline.rule


def test_info_request_expedited_is_1_calendar_day(config):
    f = facts(dt.datetime(2026, 11, 2, 9, 0, tzinfo=LA), "expedited")
    request = InfoRequest(received=dt.datetime(2026, 11, 26, 9, 0, tzinfo=LA), what="labs")
    deadline = info_request_deadline(request, f, config)
    assert deadline.due == dt.datetime(2026, 11, 27, 9, 0, tzinfo=LA)
    assert "1 calendar day" in deadline.rule


def test_add_business_days_refuses_zero(config):
    with pytest.raises(ValueError):
        add_business_days(dt.date(2026, 11, 2), 0, config)


def _deadline(due: dt.datetime) -> Deadline:
    return Deadline(review_type="standard", clock_start=due - dt.timedelta(days=3), due=due,
                    rule="r", calendar=Calendar().timezone)


@pytest.mark.parametrize("left, text", [
    (dt.timedelta(days=2, hours=5, minutes=59), "2 days 5 hours left"),
    (dt.timedelta(days=1), "1 day left"),
    (dt.timedelta(hours=3, minutes=1), "3 hours 1 minute left"),
    (dt.timedelta(hours=1), "1 hour left"),
    (dt.timedelta(minutes=40, seconds=30), "40 minutes left"),
    (dt.timedelta(seconds=20), "less than a minute left"),
    (dt.timedelta(0), "less than a minute left"),
    (-dt.timedelta(hours=3), "OVERDUE by 3 hours"),
    (-dt.timedelta(days=1, hours=2), "OVERDUE by 1 day 2 hours"),
    (-dt.timedelta(seconds=5), "OVERDUE by less than a minute"),
])
def test_time_left_text(left, text):
    due = dt.datetime(2026, 12, 2, 23, 59, 59, tzinfo=LA)
    assert time_left_text(_deadline(due), due - left) == text


def test_time_left_text_counts_real_hours_across_dst():
    # Due Sunday 2026-11-01 23:30 PST; now 00:30 PDT the same day: 24 real hours, 23 on the wall.
    due = dt.datetime(2026, 11, 1, 23, 30, tzinfo=LA)
    now = dt.datetime(2026, 11, 1, 0, 30, tzinfo=LA)
    assert time_left_text(_deadline(due), now) == "1 day left"


def test_time_left_text_compares_across_zones():
    due = dt.datetime(2026, 12, 2, 23, 59, 59, tzinfo=LA)
    now = (due - dt.timedelta(hours=2)).astimezone(dt.timezone.utc)
    assert time_left_text(_deadline(due), now) == "2 hours left"
    with pytest.raises(ValueError):
        time_left_text(_deadline(due), now.replace(tzinfo=None))


def test_duration_text():
    assert duration_text(dt.timedelta(days=3, hours=1, minutes=5)) == "3 days 1 hour"
    assert duration_text(-dt.timedelta(minutes=90)) == "1 hour 30 minutes"


# Issue 15: a deadline table of notice times, worked out by hand from the US-CA calendar of the
# holidays package (2026: Thanksgiving 11-26 and the day after, Christmas Friday 12-25; 2027: New
# Year Friday 01-01, Diwali Friday 10-29, Cesar Chavez Day 03-31 in 2026 is a Tuesday; daylight
# saving ends 2026-11-01 and starts 2027-03-14). (notice, review, due, non-federal days skipped)
DEADLINE_TABLE = [
    ("2026-12-07T10:00:00-08:00", "standard", "2026-12-10T23:59:59-08:00", []),  # plain Monday
    ("2026-12-04T23:30:00-08:00", "standard", "2026-12-09T23:59:59-08:00", []),  # Friday 23:30
    ("2026-12-05T07:30:00+00:00", "standard", "2026-12-09T23:59:59-08:00", []),  # the same, in UTC
    ("2026-12-05T09:00:00-08:00", "standard", "2026-12-09T23:59:59-08:00", []),  # Saturday
    ("2026-12-06T18:00:00-08:00", "standard", "2026-12-09T23:59:59-08:00", []),  # Sunday
    ("2026-11-25T16:10:00-08:00", "standard", "2026-12-02T23:59:59-08:00", ["Day After Thanksgiving"]),
    ("2026-12-22T09:00:00-08:00", "standard", "2026-12-28T23:59:59-08:00", []),  # across Christmas
    ("2026-12-30T09:00:00-08:00", "standard", "2027-01-05T23:59:59-08:00", []),  # across New Year
    ("2026-12-31T09:00:00-08:00", "standard", "2027-01-06T23:59:59-08:00", []),
    ("2026-10-30T10:00:00-07:00", "standard", "2026-11-04T23:59:59-08:00", []),  # across DST end
    ("2026-03-30T10:00:00-07:00", "standard", "2026-04-03T23:59:59-07:00", ["Cesar Chavez Day"]),
    ("2027-10-27T10:00:00-07:00", "standard", "2027-11-02T23:59:59-07:00", ["Diwali"]),
    ("2026-06-16T10:00:00-07:00", "standard", "2026-06-22T23:59:59-07:00", []),  # Juneteenth: federal
    ("2026-11-10T10:00:00-08:00", "standard", "2026-11-16T23:59:59-08:00", []),  # Veterans Day: federal
    ("2026-12-31T23:30:00-08:00", "expedited", "2027-01-01T23:30:00-08:00", []),  # across New Year
    ("2026-12-04T23:30:00-08:00", "expedited", "2026-12-05T23:30:00-08:00", []),  # Friday 23:30
    ("2026-11-26T08:00:00-08:00", "expedited", "2026-11-27T08:00:00-08:00", []),  # on Thanksgiving
    ("2026-10-31T12:00:00-07:00", "expedited", "2026-11-01T11:00:00-08:00", []),  # DST ends: 24 real hours
    ("2027-03-13T12:00:00-08:00", "expedited", "2027-03-14T13:00:00-07:00", []),  # DST starts
]


@pytest.mark.parametrize("notice, review, due, skipped", DEADLINE_TABLE)
def test_deadline_table(config, notice, review, due, skipped):
    deadline = packet_deadline(facts(dt.datetime.fromisoformat(notice), review), config)
    expected = dt.datetime.fromisoformat(due)
    assert deadline.due == expected and deadline.due.utcoffset() == expected.utcoffset()
    assert deadline.due.tzinfo.key == "America/Los_Angeles"
    named = [name for name in ("Day After Thanksgiving", "Cesar Chavez Day", "Diwali") if name in deadline.rule]
    assert named == skipped
    if skipped:  # issue 15 item 10: the rule line says which calendar skipped them and how to undo it
        assert "holidays 0.109 US-CA" in deadline.rule or "holidays " in deadline.rule
        assert "[calendar] not_holidays" in deadline.rule


def test_a_plan_open_on_diwali_lists_it_in_not_holidays(config):
    open_on_diwali = with_calendar(config, not_holidays=(dt.date(2027, 10, 29),))
    deadline = packet_deadline(facts(dt.datetime(2027, 10, 27, 10, tzinfo=LA)), open_on_diwali)
    assert deadline.due == end_of(dt.date(2027, 11, 1))
    assert "Diwali" not in deadline.rule and "minus 2027-10-29" in deadline.calendar


def test_plan_extra_holidays_are_named_in_the_rule_line(config):
    closed = with_calendar(config, extra_holidays=(dt.date(2026, 12, 24),))
    deadline = packet_deadline(facts(dt.datetime(2026, 12, 22, 9, tzinfo=LA)), closed)
    assert deadline.due == end_of(dt.date(2026, 12, 29))
    assert "plan holiday ([calendar] extra_holidays) (2026-12-24)" in deadline.rule


def test_supplement_record_received_two_days_before_it_was_dropped(config):
    """Issue 15 item 2: the clock runs from the plan's receipt, not from the drop."""
    from packet.model.deadlines import on_time, record_receipt

    dropped = dt.datetime(2026, 12, 10, 15, 0, tzinfo=LA)
    receipt = record_receipt(dropped, config, stated=dt.datetime(2026, 12, 8, 9, 30, tzinfo=LA))
    assert receipt.at == dt.datetime(2026, 12, 8, 9, 30, tzinfo=LA) and "overrides.toml" in receipt.how
    deadline = supplement_deadline(receipt.at, facts(dt.datetime(2026, 12, 1, 9, tzinfo=LA)), config)
    assert deadline.due == dt.datetime(2026, 12, 9, 9, 30, tzinfo=LA)
    assert not on_time(deadline, dropped)  # already late when it was dropped: say so, do not hide it
    folder = record_receipt(dropped, config, folder="received-2026-12-08")
    assert folder.at == dt.datetime(2026, 12, 8, 0, 0, tzinfo=LA) and "start of that day" in folder.how
    timed = record_receipt(dropped, config, folder="2026-12-08T0930 faxes")
    assert timed.at == dt.datetime(2026, 12, 8, 9, 30, tzinfo=LA)
    default = record_receipt(dropped, config)
    assert default.at == dropped and "the time the file was dropped" in default.how
    future = record_receipt(dropped, config, stated=dt.date(2026, 12, 11))
    assert future.at == dropped and "after the file was dropped" in future.how
    assert record_receipt(dropped, config, folder="2026-13-45").at == dropped  # not a date: the drop


def test_info_requests_answered_late_and_on_time(config):
    """Issue 15 item 1: each request has its own clock, and an answer is on time or late."""
    from packet.model.deadlines import info_request_clocks

    case = replace(facts(dt.datetime(2026, 11, 25, 16, 10, tzinfo=LA)), info_requests=(
        InfoRequest(received=dt.datetime(2026, 12, 1, 9, tzinfo=LA), what="PT notes", id="PT-1"),
        InfoRequest(received=dt.datetime(2026, 12, 18, 9, tzinfo=LA), what="MRI images", id="MRI-1"),
        InfoRequest(received=dt.datetime(2026, 12, 2, 9, tzinfo=LA), what="Letter", id=None)))
    answered = {"PT-1": dt.datetime(2026, 12, 8, 23, 0, tzinfo=LA),  # due 12-08 end of day: on time
                "MRI-1": dt.datetime(2026, 12, 29, 8, 0, tzinfo=LA)}  # due 12-28 (Christmas skipped): late
    clocks = info_request_clocks(case, config, answered)
    assert [c.deadline.due for c in clocks] == [end_of(dt.date(2026, 12, 8)), end_of(dt.date(2026, 12, 28)),
                                                end_of(dt.date(2026, 12, 9))]
    assert clocks[0].on_time is True and clocks[0].state(dt.datetime(2026, 12, 9, tzinfo=LA)) == "answered on time"
    assert clocks[1].on_time is False
    assert clocks[1].state(dt.datetime(2026, 12, 30, tzinfo=LA)) == "answered LATE by 8 hours"
    assert clocks[2].on_time is None
    assert "OVERDUE by" in clocks[2].state(dt.datetime(2026, 12, 10, 12, tzinfo=LA))
    expedited = replace(case, review_type="expedited")
    assert info_request_clocks(expedited, config)[0].deadline.due == dt.datetime(2026, 12, 2, 9, tzinfo=LA)


@pytest.mark.parametrize("folder, expected", [
    ("received-2026-12-08", dt.datetime(2026, 12, 8, 0, 0, tzinfo=LA)),
    ("Received 2026-12-08 09.30", dt.datetime(2026, 12, 8, 9, 30, tzinfo=LA)),
    ("medical-records/2026-12-08T0930 faxes", dt.datetime(2026, 12, 8, 9, 30, tzinfo=LA)),
    ("2026-12-08/MRI 2026-08-14", dt.datetime(2026, 12, 8, 0, 0, tzinfo=LA)),  # the dated folder above it
    ("medical-records/MRI 2026-08-14", None),  # a record's own date is not its receipt
    ("scans 2026-12-08", None),
    ("received-2026-02-30", None),  # not a date
    ("received-2026-12-08-extra-2026-12-09", dt.datetime(2026, 12, 8, 0, 0, tzinfo=LA)),
])
def test_a_dated_folder_is_a_receipt_only_when_it_is_named_for_the_receipt(config, folder, expected):
    """Issue 15 item 2, round 3: the folder name starts with the day the plan received its files."""
    from packet.model.deadlines import DROPPED, record_receipt

    dropped = dt.datetime(2026, 12, 10, 15, 0, tzinfo=LA)
    receipt = record_receipt(dropped, config, folder=folder)
    if expected is None:
        assert receipt.at == dropped and receipt.how == DROPPED
    else:
        assert receipt.at == expected and "folder name" in receipt.how
