"""The overview: money per provider and currency for today, 7 days, 30 days and a range, live and
test apart; charts drawn on the server with their tables; failure reasons; providers' health."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta

from flask_psp.admin.dashboard import chart_geometry, failure_kind, overview_query

from .conftest import configure_payplug
from .test_payments import pay


def seed_week(session, today: date) -> None:
    """A week of payments: live Adyen and PayPlug in EUR every day, one live HiPay in USD, test-mode
    payments that must never count as live money, and failures of each kind."""
    from flask_psp.models import Payment

    def add(day: date, provider: str, amount: int, status: str = "paid", mode: str = "live", currency: str = "EUR",
            refunded: int = 0, reason: str | None = None):
        at = datetime.combine(day, time(12, 0))
        taken = amount if status in ("paid", "partially_refunded", "refunded") else 0
        session.add(Payment(order_ref=f"SEED-{provider}-{day.isoformat()}-{status}-{mode}-{amount}", provider=provider,
                            mode=mode, amount=amount, currency=currency, status=status, authorized_amount=taken,
                            captured_amount=taken, refunded_amount=refunded, failure_reason=reason,
                            created_at=at, paid_at=at if taken else None, email="seed@example.com"))

    for n in range(7):
        day = today - timedelta(days=6 - n)
        add(day, "adyen", 1000 * (n + 1))
        add(day, "payplug", 500, status="partially_refunded" if n == 2 else "paid", refunded=100 if n == 2 else 0)
        add(day, "payplug", 99999, mode="test")  # never live money
    add(today - timedelta(days=1), "hipay", 2000, currency="USD")
    add(today, "adyen", 1500, status="failed", reason="3D Not Authenticated")
    add(today, "adyen", 1500, status="failed", reason="Refused")
    add(today, "payplug", 700, status="cancelled", reason="aborted")
    add(today, "sips", 800, status="expired", reason="Sips responseCode 97")
    add(today - timedelta(days=20), "adyen", 4000)  # in the 30 days, not in the 7
    session.commit()


def amounts(page: str, period: str) -> dict[tuple[str, str], int]:
    table = re.search(rf'<table class="psp-table psp-period" data-period="{period}">(.*?)</table>', page, re.S).group(1)
    found = {}
    for provider, currency, captured in re.findall(
            r'<tr data-provider="(\w+)" data-currency="(\w+)"><th scope="row">[^<]*</th><td class="psp-num" '
            r'data-amount="(\d+)"', table):
        found[(provider, currency)] = int(captured)
    for currency, captured, refunded, net in re.findall(
            r'<tr class="psp-total" data-currency="(\w+)"><th scope="row">[^<]*</th><td class="psp-num" data-amount="(\d+)">'
            r'[^<]*</td><td class="psp-num" data-amount="(\d+)">[^<]*</td><td class="psp-num" data-amount="(-?\d+)">', table):
        found[("total", currency)] = (int(captured), int(refunded), int(net))
    return found


def test_the_overview_shows_live_money_per_provider_and_currency_for_each_period(panel):
    today = date.today()
    panel.query(lambda s: seed_week(s, today))
    answer = panel.admin("viewer").get("/")
    assert answer.status_code == 200
    assert answer.headers["Content-Security-Policy"].startswith("default-src 'self'")
    page = answer.text
    assert amounts(page, "today") == {("adyen", "EUR"): 7000, ("payplug", "EUR"): 500, ("sips", "EUR"): 0,
                                      ("total", "EUR"): (7500, 0, 7500)}  # Sips: started, none paid
    week = amounts(page, "7d")
    assert week[("adyen", "EUR")] == 28000 and week[("payplug", "EUR")] == 3500 and week[("hipay", "USD")] == 2000
    assert week[("total", "EUR")] == (31500, 100, 31400) and week[("total", "USD")] == (2000, 0, 2000)
    assert amounts(page, "30d")[("adyen", "EUR")] == 32000
    assert "€99,999" not in page and "99999" not in page  # test money never added in

    test_mode = panel.admin("viewer").get("/?mode=test").text
    assert amounts(test_mode, "7d") == {("payplug", "EUR"): 7 * 99999, ("total", "EUR"): (7 * 99999, 0, 7 * 99999)}


def test_the_charts_are_svg_with_the_same_figures_as_their_tables(panel):
    today = date.today()
    panel.query(lambda s: seed_week(s, today))
    start = today - timedelta(days=6)
    page = panel.admin("viewer").get(f"/?date_from={start.isoformat()}&date_to={today.isoformat()}").text
    assert "<script" not in page.split("</footer>")[0]  # drawn on the server, nothing to run
    chart = re.search(r'<section class="psp-box psp-chart" id="chart-captured-EUR">(.*?)</section>', page, re.S).group(1)
    bars = re.findall(r'<rect x="[\d.]+" y="[\d.]+" width="[\d.]+" height="[\d.]+" fill="#\w+" data-day="([\d-]+)" '
                      r'data-value="(\d+)">', chart)
    assert len(bars) == 14  # 7 days, Adyen and PayPlug stacked
    assert sum(int(v) for _d, v in bars) == 31500
    table = [int(v) for v in re.findall(r'data-amount="(\d+)"', chart.split('data-table="captured"')[1])]
    assert sum(table) == 31500 and len(table) == 7 * 2
    conversion = re.search(r'id="chart-conversion">(.*?)</section>', page, re.S).group(1)
    rows = re.findall(r'<tr><th scope="row">([\d-]+)</th><td class="psp-num">(\d+)</td><td class="psp-num">(\d+)</td>', conversion)
    assert rows[-1] == (today.isoformat(), "6", "2")  # today: 2 paid out of 6 live payments started
    assert rows[0] == (start.isoformat(), "2", "2")
    assert 'data-chart="conversion"' in conversion and f'data-day="{today.isoformat()}" data-value="33"' in conversion


def test_failures_are_told_by_kind_and_provider(panel):
    panel.query(lambda s: seed_week(s, date.today()))
    page = panel.admin("viewer").get("/").text
    failures = re.search(r'<section class="psp-box" id="failures">(.*?)</section>', page, re.S).group(1)

    def kinds(provider):
        row = re.search(rf'<tr data-provider="{provider}">(.*?)</tr>', failures, re.S).group(1)
        return dict(re.findall(r'data-kind="(\w+)">(\d+)<', row))

    assert kinds("adyen") == {"declined": "1", "3ds_failed": "1", "cancelled": "0", "expired": "0"}
    assert kinds("payplug") == {"declined": "0", "3ds_failed": "0", "cancelled": "1", "expired": "0"}
    assert kinds("sips")["expired"] == "1"
    assert "3D Not Authenticated (1)" in failures


def test_failure_kinds():
    assert failure_kind("failed", "3D Not Authenticated") == "3ds_failed"
    assert failure_kind("failed", "Authentication failed (3-D Secure)") == "3ds_failed"
    assert failure_kind("failed", "Refused") == "declined"
    assert failure_kind("failed", None) == "declined"
    assert failure_kind("cancelled", "3DS") == "cancelled"
    assert failure_kind("expired", None) == "expired"


def test_provider_health_tells_the_last_notification_refusals_and_the_last_good_connection_test(panel):
    owner = configure_payplug(panel, panel.sim.url)
    pay(panel)
    assert owner.post("/providers/payplug/test", {"mode": "test"}).status_code == 303
    forged = panel.shop.buyer().http.post(panel.shop.notify_url(), data=b'{"id": "pay_x"}', timeout=10,
                                          headers={"Content-Type": "application/json"})
    assert forged.status_code in (400, 401, 403, 404, 500, 503)
    page = panel.admin("viewer").get("/").text
    row = re.search(r'<tr data-provider="payplug">(.*?)</tr>', page.split('id="health"')[1], re.S).group(1)
    today = date.today().isoformat()
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
    assert cells[0].startswith(today)  # the last notification
    assert cells[2].startswith(today)  # the last successful test
    adyen = re.search(r'<tr data-provider="adyen">(.*?)</tr>', page.split('id="health"')[1], re.S).group(1)
    assert adyen.count("never") == 2 and 'data-troubled="0"' in adyen


def test_a_broken_or_too_long_range_is_said_and_the_last_30_days_shown(panel):
    viewer = panel.admin("viewer")
    broken = viewer.get("/?date_from=01/12/2026")
    assert broken.status_code == 400 and "Dates are written YYYY-MM-DD." in broken.text
    long = viewer.get("/?date_from=2020-01-01&date_to=2026-01-01")
    assert long.status_code == 400 and "The range is at most 366 days." in long.text
    backwards = viewer.get("/?date_from=2026-02-01&date_to=2026-01-01")
    assert backwards.status_code == 400 and "The range ends before it starts." in backwards.text
    query = overview_query({"mode": "nonsense"}, date(2026, 3, 31))
    assert (query.mode, query.start, query.end) == ("live", date(2026, 3, 2), date(2026, 3, 31))


def test_stacked_bars_fill_their_column_in_proportion():
    geometry = chart_geometry([("A", "#000000", [10, 0, 30]), ("B", "#ffffff", [30, 0, 10])], width=300, height=120,
                              headroom=20)
    assert geometry["top"] == 40
    first_day = [b for b in geometry["bars"] if b.index == 0]
    assert [(b.series, b.height) for b in first_day] == [("A", 25.0), ("B", 75.0)]
    assert first_day[1].y == 20  # the tallest column reaches the top of the scale
    assert not [b for b in geometry["bars"] if b.index == 1]
    assert chart_geometry([])["bars"] == []
