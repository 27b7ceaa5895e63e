"""The export's dates come from whoever types them (the CLI, the admin panel's form): any text is
either a period of at most 24 months or a message, never a crash."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from flask_psp.accounting import export_period

MESSAGES = ("Dates are written YYYY-MM-DD.", "The end of the period is before its start.",
            "An export covers at most 24 months")
PROPERTY = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

typed = st.one_of(
    st.dates().map(date.isoformat),
    st.text(max_size=24),
    st.sampled_from(["0001-01-01", "9999-12-31", "2024-02-29", "2026-02-29", "20260101", "2026-1-1", " 2026-01-01 ",
                     "2026-01-01T00:00", "\x00", "２０２６-01-01", "", "-2026-01-01"]),
)


@PROPERTY
@given(start=typed, end=typed)
@example(start="2024-02-29", end="2026-02-28")
@example(start="0001-01-01", end="9999-12-31")
def test_any_typed_dates_are_a_period_of_at_most_24_months_or_a_message(start, end):
    try:
        first, last = export_period(start, end)
    except ValueError as exc:
        assert str(exc).startswith(MESSAGES), str(exc)
        return
    assert first <= last
    assert first.isoformat() == start.strip() and last.isoformat() == end.strip()
    # 24 months at most: the same day two years on is always too far (when the calendar has it)
    if first.year <= 9997:
        try:
            two_years_on = first.replace(year=first.year + 2)
        except ValueError:  # 29 February
            two_years_on = date(first.year + 2, 3, 1)
        assert last < two_years_on


@pytest.mark.parametrize("start, end, fine", [
    ("2025-01-01", "2026-12-31", True),  # a first fiscal year of 24 months
    ("2025-01-01", "2027-01-01", False),
    ("2024-02-29", "2026-02-28", True),
    ("2024-02-29", "2026-03-01", False),
    ("2025-07-01", "2027-06-30", True),
    ("9999-12-31", "9999-12-31", True),
])
def test_a_first_fiscal_year_of_24_months_is_one_export(start, end, fine):
    if fine:
        assert export_period(start, end) == (date.fromisoformat(start), date.fromisoformat(end))
    else:
        with pytest.raises(ValueError, match="24 months"):
            export_period(start, end)


def test_no_date_typed_on_the_command_line_crashes_the_export(books):
    app, _db, _Order = books
    runner = app.test_cli_runner()

    @PROPERTY
    @given(start=typed, end=typed, kind=st.sampled_from(["fec", "csv"]))
    @example(start="0001-01-01", end="0001-12-31", kind="fec")
    @example(start="9999-01-01", end="9999-12-31", kind="fec")
    def check(start, end, kind):
        result = runner.invoke(args=["psp", "accounting", "export", "--start", start, "--end", end,
                                     "--format", kind, "--output", "-"])
        assert result.exit_code in (0, 1, 2), (start, end, result.output)
        assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
        if result.exit_code == 0:
            assert result.stdout_bytes.startswith(b"JournalCode")
        elif result.exit_code == 1:
            assert any(message in result.output for message in MESSAGES), result.output

    check()


def test_the_day_boundaries_follow_the_accounting_time_zone(books):
    """A sale at 23:30 UTC on 31 March is on 1 April in Paris: its entry is dated there."""
    from datetime import datetime

    from flask_psp.movements import record_movement

    app, db, _Order = books
    app.config["PSP_ACCOUNTING_TIMEZONE"] = "Europe/Paris"
    record_movement(db.session, kind="capture", amount=1000, currency="EUR", provider="sips", mode="live",
                    occurred_at=datetime(2026, 3, 31, 23, 30), psp_reference="S1")
    db.session.commit()
    runner = app.test_cli_runner()

    def day(when):
        result = runner.invoke(args=["psp", "accounting", "export", "--start", when, "--end", when, "--format", "fec",
                                     "--output", "-"])
        assert result.exit_code == 0, result.output
        return result.stdout_bytes.decode("iso-8859-15").splitlines()[1:]

    assert day("2026-03-31") == []
    (debit, credit) = day("2026-04-01")
    assert debit.split("\t")[3] == "20260401" and "S1" in debit
    assert date(2026, 4, 1) - timedelta(days=1) == date(2026, 3, 31)
