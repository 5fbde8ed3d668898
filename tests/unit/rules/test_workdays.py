from datetime import date, datetime

import pytest

from workflows.rules.workdays import (
    FIRST_DAY,
    LAST_DAY,
    CalendarRangeError,
    add_workdays,
    is_workday,
    workdays_between,
)


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2025, 9, 26), True),  # Friday
        (date(2025, 9, 27), False),  # Saturday
        (date(2025, 9, 28), True),  # Sunday, make-up workday for National Day
        (date(2025, 10, 1), False),  # National Day
        (date(2025, 10, 6), False),  # Mid-Autumn Festival, merged into the break
        (date(2025, 10, 8), False),  # last day of the break, a Wednesday
        (date(2025, 10, 9), True),
        (date(2025, 10, 11), True),  # Saturday, make-up workday
        (date(2025, 10, 12), False),  # Sunday
        (date(2025, 1, 26), True),  # Sunday, make-up workday for Spring Festival
        (date(2025, 1, 29), False),  # Spring Festival
        (datetime(2025, 10, 9, 15, 30), True),
    ],
)
def test_is_workday(day, expected):
    assert is_workday(day) is expected


@pytest.mark.parametrize(
    ("start", "n", "expected"),
    [
        (date(2025, 9, 26), 1, date(2025, 9, 28)),  # Friday + 1: the make-up Sunday
        (date(2025, 9, 26), 2, date(2025, 9, 29)),
        (date(2025, 9, 30), 1, date(2025, 10, 9)),  # across the whole National Day break
        (date(2025, 9, 30), 2, date(2025, 10, 10)),
        (date(2025, 9, 30), 3, date(2025, 10, 11)),  # make-up Saturday
        (date(2025, 9, 30), 4, date(2025, 10, 13)),
        (date(2025, 10, 1), 2, date(2025, 10, 10)),  # counting from inside the break
        (date(2025, 9, 29), 5, date(2025, 10, 13)),
        (date(2025, 10, 9), 0, date(2025, 10, 9)),
        (date(2025, 10, 9), -1, date(2025, 9, 30)),
        (date(2025, 10, 9), -3, date(2025, 9, 28)),
    ],
)
def test_add_workdays(start, n, expected):
    assert add_workdays(start, n) == expected


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (date(2025, 9, 26), date(2025, 10, 12), 6),  # 28, 29, 30 Sep; 9, 10, 11 Oct
        (date(2025, 9, 30), date(2025, 10, 8), 0),
        (date(2025, 10, 9), date(2025, 10, 9), 0),
        (date(2025, 10, 12), date(2025, 9, 26), -6),
    ],
)
def test_workdays_between(a, b, expected):
    assert workdays_between(a, b) == expected


def test_add_and_count_agree():
    start = date(2025, 9, 20)
    for n in range(0, 30):
        assert workdays_between(start, add_workdays(start, n)) == n


@pytest.mark.parametrize(
    "call",
    [
        lambda: is_workday(date(LAST_DAY.year + 1, 1, 5)),
        lambda: is_workday(date(FIRST_DAY.year - 1, 12, 31)),
        lambda: add_workdays(date(LAST_DAY.year + 5, 3, 1), 1),
        lambda: add_workdays(date(LAST_DAY.year, 12, 30), 5),  # runs off the end of the data
        lambda: workdays_between(date(2025, 1, 1), date(LAST_DAY.year + 1, 1, 1)),
    ],
)
def test_dates_beyond_the_calendar_are_refused(call):
    with pytest.raises(CalendarRangeError) as caught:
        call()
    message = str(caught.value)
    assert f"{FIRST_DAY.year}–{LAST_DAY.year}" in message
    assert "节假日日历未包含" in message and "录入该年的放假和调休安排" in message
