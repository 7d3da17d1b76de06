"""How often an EventBridge schedule fires in an average month: ``rate(...)`` by arithmetic, ``cron(...)`` by
counting its fire times over one calendar year (2027, which is not a leap year) and dividing by 12.

The grammar is the one mlsettings/config accepts (AWS "Schedule expressions for rules"). Day fields with L, W
or # (last day, nearest weekday, n-th weekday) fire on one day of each month they allow: they are counted
as such, which is exact for L and #n and for W."""

from __future__ import annotations

import calendar
import datetime as dt
import re

HOURS_PER_MONTH = 730.0  # 8,760 hours a year / 12: the month AWS's own price examples use
YEAR = 2027
_MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
_DAYS = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]  # EventBridge: 1 = SUN ... 7 = SAT
_UNIT_HOURS = {"minute": 1 / 60, "hour": 1.0, "day": 24.0}


class ScheduleError(ValueError):
    pass


def _values(field: str, low: int, high: int, names: list[str] | None = None) -> set[int]:
    found: set[int] = set()
    for item in field.split(","):
        base, _, step_text = item.partition("/")
        step = int(step_text) if step_text else 1
        if base in ("*", "?"):
            start, end = low, high
        else:
            first, dash, last = base.partition("-")
            start = _number(first, names)
            end = _number(last, names) if dash else (high if step_text else start)
        if not (low <= start <= high and low <= end <= high):
            raise ScheduleError(f"{item!r} is outside {low}-{high}")
        found.update(range(start, end + 1, step))
    return found


def _number(token: str, names: list[str] | None) -> int:
    if names and token.upper() in names:
        return names.index(token.upper()) + 1
    if not token.isdigit():
        raise ScheduleError(f"{token!r} is not a number")
    return int(token)


def _special(field: str) -> bool:
    return bool(re.search(r"[LW#]", field))


def runs_per_month(expression: str) -> float:
    """Average fire count per month (730 hours) of a schedule expression."""
    rate = re.fullmatch(r"rate\((\d+) (minute|hour|day)s?\)", expression)
    if rate:
        every_hours = int(rate.group(1)) * _UNIT_HOURS[rate.group(2)]
        return HOURS_PER_MONTH / every_hours
    cron = re.fullmatch(r"cron\(([^()]*)\)", expression)
    if not cron or len(cron.group(1).split()) != 6:
        raise ScheduleError(f"{expression!r} is not a rate(...) or six-field cron(...) expression")
    minutes, hours, day_of_month, month, day_of_week, _year = cron.group(1).split()
    per_day = len(_values(minutes, 0, 59)) * len(_values(hours, 0, 23))
    months = _values(month, 1, 12, _MONTHS)
    days = 0
    for number in sorted(months):
        if _special(day_of_month) or _special(day_of_week):
            days += 1  # L, LW, nW, nL, n#k: one day in each allowed month
            continue
        month_days = calendar.monthrange(YEAR, number)[1]
        allowed_dom = _values(day_of_month, 1, 31) if day_of_month != "?" else None
        allowed_dow = _values(day_of_week, 1, 7, _DAYS) if day_of_week != "?" else None
        for day in range(1, month_days + 1):
            weekday = (dt.date(YEAR, number, day).isoweekday() % 7) + 1  # Sunday = 1
            if (allowed_dom is None or day in allowed_dom) and (allowed_dow is None or weekday in allowed_dow):
                days += 1
    return days * per_day / 12
