"""Due dates of a case: the plan's business calendar and the rules of domain.md section 3.

Owns: which days are business days (the `holidays` package's US-CA list, adjusted by the
configuration's `[calendar] extra_holidays` / `not_holidays`, in the plan's time zone), the due time
of the packet to the IMR organization, of a supplement and of requested information, the words that
say which rule and which calendar produced each date, and "time left" in plain language.
Must not: read case folders, write files or log; every function is pure given its arguments.

Choices, recorded here so an auditor can follow them:
- "N business days after" an event: the event's own day never counts, even when it is a business
  day; the due time is the end (23:59:59 local time) of the Nth business day after it. A notice that
  arrives on a weekend or holiday starts counting on the next business day.
- "24 hours" is elapsed time: 24 hours on the clock of the world, not the same wall-clock time on
  the next day. Across a daylight-saving change the two differ by an hour; elapsed time is what the
  statute's "24 hours" says, and it is the earlier of the two in the autumn.
- Thanksgiving and the day after are holidays in every calendar variant (domain.md section 3). The
  `holidays` package lists both for US-CA; they are added here too in case an installed version
  lacks them. A date in `not_holidays` still wins: the plan's compliance staff decide.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from functools import lru_cache

import holidays

from packet.model.case import CaseFacts, InfoRequest
from packet.config import Calendar, Config
from packet.model.models import Deadline

COUNTRY = "US"
SUBDIVISION = "CA"
END_OF_DAY = dt.time(23, 59, 59)

# Citations for the rules (domain.md sections 1 and 3).
STANDARD_BUSINESS_DAYS = 3
INFO_REQUEST_BUSINESS_DAYS = 5
EXPEDITED_HOURS = 24
SUPPLEMENT_HOURS = 24
INFO_REQUEST_EXPEDITED_HOURS = 24


def _thanksgiving(year: int) -> dt.date:
    """The fourth Thursday of November."""
    first = dt.date(year, 11, 1)
    first_thursday = first + dt.timedelta(days=(3 - first.weekday()) % 7)
    return first_thursday + dt.timedelta(weeks=3)


@lru_cache(maxsize=64)
def _holidays_of_year(calendar: Calendar, year: int) -> frozenset[dt.date]:
    base = holidays.country_holidays(COUNTRY, subdiv=SUBDIVISION, years=year)
    days = set(base.keys())
    # Thanksgiving and the day after are days off in every variant (domain.md section 3). The
    # package has both for US-CA (0.109 calls the second "Day After Thanksgiving"); adding them
    # again is harmless and protects against a version that lacks one.
    thanksgiving = _thanksgiving(year)
    days.update({thanksgiving, thanksgiving + dt.timedelta(days=1)})
    days.update(d for d in calendar.extra_holidays if d.year == year)
    days.difference_update(calendar.not_holidays)
    return frozenset(days)


def is_holiday(day: dt.date, config: Config) -> bool:
    return day in _holidays_of_year(config.calendar, day.year)


def is_business_day(day: dt.date, config: Config) -> bool:
    """Monday to Friday, minus the plan's holidays."""
    return day.weekday() < 5 and not is_holiday(day, config)


def add_business_days(day: dt.date, count: int, config: Config) -> dt.date:
    """The `count`th business day after `day` (`day` itself never counts)."""
    if count < 1:
        raise ValueError("count must be at least 1")
    current = day
    remaining = count
    while remaining:
        current += dt.timedelta(days=1)
        if is_business_day(current, config):
            remaining -= 1
    return current


@lru_cache(maxsize=64)
def _federal_holidays(year: int) -> frozenset[dt.date]:
    return frozenset(holidays.country_holidays(COUNTRY, years=year).keys())


def holiday_name(day: dt.date, config: Config) -> str:
    if day in config.calendar.extra_holidays:
        return "plan holiday ([calendar] extra_holidays)"
    names = holidays.country_holidays(COUNTRY, subdiv=SUBDIVISION, years=day.year)
    if day in names:
        return str(names.get(day))
    return "Day After Thanksgiving" if day == _thanksgiving(day.year) + dt.timedelta(days=1) else "holiday"


def skipped_non_federal(start_day: dt.date, due_day: dt.date, config: Config) -> list[tuple[dt.date, str]]:
    """Weekdays after `start_day` up to `due_day` that the count skipped as holidays although they
    are not federal holidays (California days such as Cesar Chavez Day or Diwali, the day after
    Thanksgiving, the plan's own extra_holidays): the rule line names them, so a plan whose
    office was open can say so in `[calendar] not_holidays`."""
    skipped = []
    day = start_day + dt.timedelta(days=1)
    while day <= due_day:
        if day.weekday() < 5 and is_holiday(day, config) and day not in _federal_holidays(day.year):
            skipped.append((day, holiday_name(day, config)))
        day += dt.timedelta(days=1)
    return skipped


def _skipped_note(start: dt.datetime, due: dt.datetime, config: Config) -> str:
    skipped = skipped_non_federal(start.date(), due.date(), config)
    if not skipped:
        return ""
    days = ", ".join(f"{name} ({day.isoformat()})" for day, name in skipped)
    return (f"; skipped as non-federal holiday{'s' if len(skipped) > 1 else ''}: {days}, by the calendar "
            f"{calendar_description(config)} (a plan open that day lists it in [calendar] not_holidays)")


def calendar_description(config: Config) -> str:
    """Which calendar produced a date: package, version, adjustments and time zone.

    e.g. "holidays 0.109 US-CA; plus 2026-12-24; minus 2026-02-15; Thanksgiving and the day after
    always off; time zone America/Los_Angeles". It goes into the manifest's deadline.calendar.
    """
    calendar = config.calendar
    parts = [f"holidays {holidays.__version__} {COUNTRY}-{SUBDIVISION}"]
    if calendar.extra_holidays:
        parts.append("plus " + ", ".join(d.isoformat() for d in sorted(calendar.extra_holidays)))
    if calendar.not_holidays:
        parts.append("minus " + ", ".join(d.isoformat() for d in sorted(calendar.not_holidays)))
    parts.append("Thanksgiving and the day after always off")
    parts.append("weekends off")
    parts.append(f"time zone {calendar.timezone}")
    return "; ".join(parts)


def _local(moment: dt.datetime, config: Config) -> dt.datetime:
    if moment.tzinfo is None:
        raise ValueError("a deadline's start must carry its time zone")
    return moment.astimezone(config.calendar.tz)


def _end_of_business_day(start: dt.datetime, count: int, config: Config) -> dt.datetime:
    local = _local(start, config)
    due_day = add_business_days(local.date(), count, config)
    return dt.datetime.combine(due_day, END_OF_DAY, tzinfo=config.calendar.tz)


def _after_hours(start: dt.datetime, hours: int, config: Config) -> dt.datetime:
    # Elapsed hours: add in UTC, then show in the plan's zone (correct across a DST change).
    utc = start.astimezone(dt.timezone.utc) + dt.timedelta(hours=hours)
    return utc.astimezone(config.calendar.tz)


def _expedited_or_business_days(start: dt.datetime, facts: CaseFacts, config: Config, *, hours: int,
                                business_days: int, expedited_rule: str, standard_rule: str) -> Deadline:
    """`hours` elapsed when the review is expedited, else the end of the `business_days`-th business
    day; the standard rule says which non-federal holidays it skipped."""
    if facts.expedited:
        due = _after_hours(start, hours, config)
        rule = expedited_rule
    else:
        due = _end_of_business_day(start, business_days, config)
        rule = standard_rule + _skipped_note(start, due, config)
    return Deadline(review_type=facts.review_type, clock_start=start, due=due, rule=rule,
                    calendar=calendar_description(config))


def packet_deadline(facts: CaseFacts, config: Config) -> Deadline:
    """When the packet is due at the IMR organization (H&S 1374.30(n); domain.md section 3)."""
    return _expedited_or_business_days(
        _local(facts.dmhc_notice_received, config), facts, config,
        hours=EXPEDITED_HOURS, business_days=STANDARD_BUSINESS_DAYS,
        expedited_rule="expedited review: 24 hours after the plan received DMHC's notice (H&S 1374.30(n))",
        standard_rule=("3 business days after the plan received DMHC's notice, due at the end of the "
                       "third business day; the day of receipt does not count (H&S 1374.30(n))"))


def supplement_deadline(received_at: dt.datetime, facts: CaseFacts, config: Config) -> Deadline:
    """Newly developed or discovered records: within 1 day (24 hours) of the plan's receipt.

    The statute says "immediately" (H&S 1374.30(n)); the plan's policy says within 1 day.
    """
    start = _local(received_at, config)
    due = _after_hours(start, SUPPLEMENT_HOURS, config)
    rule = ("newly developed or discovered records: 1 day (24 hours) after the plan received the "
            "new record (H&S 1374.30(n): \"immediately\")")
    return Deadline(review_type=facts.review_type, clock_start=start, due=due, rule=rule,
                    calendar=calendar_description(config))


def info_request_deadline(request: InfoRequest, facts: CaseFacts, config: Config) -> Deadline:
    """Information the IMR organization asked for: 5 business days, or 1 calendar day expedited."""
    return _expedited_or_business_days(
        _local(request.received, config), facts, config,
        hours=INFO_REQUEST_EXPEDITED_HOURS, business_days=INFO_REQUEST_BUSINESS_DAYS,
        expedited_rule=("information requested by the IMR organization, expedited review: 1 calendar day "
                        "(24 hours) after the plan received the request"),
        standard_rule=("information requested by the IMR organization: 5 business days after the plan "
                       "received the request, due at the end of the fifth business day; the day of "
                       "receipt does not count"))


def on_time(deadline: Deadline, sent_at: dt.datetime) -> bool:
    """Was it sent by the due time (compared as instants, whatever the zones)?"""
    if sent_at.tzinfo is None:
        raise ValueError("sent_at must carry its time zone")
    return sent_at.astimezone(dt.timezone.utc) <= deadline.due.astimezone(dt.timezone.utc)


@dataclass(frozen=True)
class Receipt:
    """When the plan received a record, and how that is known (the supplement clock starts here)."""

    at: dt.datetime
    how: str


DROPPED = "no receipt recorded: the time the file was dropped into the case folder"

# A folder named for the day the plan received its files: "received-2026-12-01", "2026-12-01",
# "2026-12-01T0930", "2026-12-01 09.30 faxes" (Windows folder names cannot hold ":"). The folder
# name must START with the date (or "received" and the date): a folder named for something else
# that carries a date ("MRI 2026-08-14", a record's own date) says nothing about the receipt, and
# reading it so would start the clock months early and seal the supplement as late.
DATED_FOLDER = re.compile(r"(?:(?:received|recibido|rcvd)[ _-]*)?(\d{4})-(\d{2})-(\d{2})"
                          r"(?:[T _](\d{2})[:.h]?(\d{2}))?(?=$|[^0-9])", re.I)


def record_receipt(dropped_at: dt.datetime, config: Config, *, stated: dt.datetime | dt.date | None = None,
                   folder: str | None = None) -> Receipt:
    """The receipt time of a supplemental record (issue 15 item 2; domain.md: "1 day from receipt").

    In order: the time a person recorded (`received` in overrides.toml), a dated folder the file
    was dropped in, else the time the service first saw the file, stated as such. A date without
    a time counts from the start of that day (the earlier, safer due time). A receipt later than
    the drop cannot be: the drop time is used and the reason says so.
    """
    dropped = _local(dropped_at, config)
    tz = config.calendar.tz
    found: tuple[dt.datetime, str] | None = None
    if isinstance(stated, dt.datetime):
        if stated.tzinfo is None:
            stated = stated.replace(tzinfo=tz)
        found = (_local(stated, config), "received, as recorded in overrides.toml")
    elif isinstance(stated, dt.date):
        found = (dt.datetime.combine(stated, dt.time(0, 0), tzinfo=tz),
                 "received on the date recorded in overrides.toml (counted from the start of that day)")
    elif folder:
        match = next(filter(None, (DATED_FOLDER.match(part) for part in reversed(folder.split("/")))), None)
        if match:
            year, month, day, hour, minute = match.groups()
            try:
                at = dt.datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0), tzinfo=tz)
            except ValueError:
                at = None
            if at is not None:
                found = (at, f"received as the folder name {folder!r} says"
                         + ("" if hour else " (counted from the start of that day)"))
    if found is None:
        return Receipt(dropped, DROPPED)
    at, how = found
    if at > dropped:
        return Receipt(dropped, f"{how}, but that is after the file was dropped: the drop time is used")
    return Receipt(at, how)


@dataclass(frozen=True)
class InfoRequestClock:
    """One request of the IMR organization (case.toml [[info_requests]]) and its clock."""

    request: InfoRequest
    deadline: Deadline
    answered_at: dt.datetime | None  # when the `response` submission answering it was sealed
    request_id: str = ""  # the request's id, "request-N" when case.toml gives none
    answered_by: int | None = None  # the number of that submission

    @property
    def on_time(self) -> bool | None:
        return None if self.answered_at is None else on_time(self.deadline, self.answered_at)

    def overdue(self, now: dt.datetime) -> bool:
        """Unanswered past its due time, or answered late."""
        if self.answered_at is None:
            return now.astimezone(dt.timezone.utc) > self.deadline.due.astimezone(dt.timezone.utc)
        return not self.on_time

    def state(self, now: dt.datetime) -> str:
        """Plain words for status, _STATUS.txt and the board, counted like the packet deadline."""
        if self.answered_at is None:
            return f"due {self.deadline.due.isoformat()}: {time_left_text(self.deadline, now)}"
        by = f" by submission {self.answered_by}" if self.answered_by is not None else ""
        return f"answered{by} on time" if self.on_time else (
            f"answered{by} LATE by {duration_text(self.answered_at - self.deadline.due)}")

    def to_json(self) -> dict:
        """The manifest's and `status --json`'s entry."""
        return {"id": self.request_id, "what": self.request.what,
                "received": self.deadline.clock_start.isoformat(), "due": self.deadline.due.isoformat(),
                "rule": self.deadline.rule,
                "answered_by": self.answered_by,
                "answered_at": self.answered_at.isoformat() if self.answered_at is not None else None,
                "on_time": self.on_time}


def request_ids(facts: CaseFacts) -> list[str]:
    """The id of each [[info_requests]] entry, in order ("request-N" when it has none)."""
    return [request.id or f"request-{index}" for index, request in enumerate(facts.info_requests, 1)]


def info_request_clocks(facts: CaseFacts, config: Config,
                        answered: dict[str, dt.datetime | tuple[int, dt.datetime]] | None = None
                        ) -> list[InfoRequestClock]:
    """Each information request's due time (5 business days, 1 calendar day expedited) and, when a
    `response` submission answered it (`answered[request id]`: its sealing time, or (submission
    number, sealing time)), whether that was on time."""
    answered = answered or {}
    clocks = []
    for request, request_id in zip(facts.info_requests, request_ids(facts)):
        answer = answered.get(request_id)
        number, at = answer if isinstance(answer, tuple) else (None, answer)
        clocks.append(InfoRequestClock(request=request, deadline=info_request_deadline(request, facts, config),
                                       answered_at=at, request_id=request_id, answered_by=number))
    return clocks


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _span(delta: dt.timedelta) -> str:
    """A positive span in the two largest units, rounded down (never overstates time left)."""
    total_minutes = int(delta.total_seconds() // 60)
    if total_minutes < 1:
        return "less than a minute"
    days, rest = divmod(total_minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        return _plural(days, "day") + (f" {_plural(hours, 'hour')}" if hours else "")
    if hours:
        return _plural(hours, "hour") + (f" {_plural(minutes, 'minute')}" if minutes else "")
    return _plural(minutes, "minute")


def duration_text(delta: dt.timedelta) -> str:
    """A span of time in plain words, e.g. "2 days 5 hours", "40 minutes" (rounded down)."""
    return _span(abs(delta))


def time_left_text(deadline: Deadline, now: dt.datetime) -> str:
    """Plain language: "2 days 5 hours left", "40 minutes left", "OVERDUE by 3 hours"."""
    if now.tzinfo is None:
        raise ValueError("now must carry its time zone")
    # In UTC: Python subtracts wall-clock times when both sides share one tzinfo, which is an
    # hour off across a daylight-saving change.
    left = deadline.due.astimezone(dt.timezone.utc) - now.astimezone(dt.timezone.utc)
    if left >= dt.timedelta(0):
        return f"{_span(left)} left"
    return f"OVERDUE by {_span(-left)}"

