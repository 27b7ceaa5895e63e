"""Admin inputs out of range — amounts, page links, dates, refunds — are a 400 with a message the
merchant can act on, never a 500, on SQLite and on PostgreSQL (whose bigint overflows where SQLite's
integers do not, and which refuses NUL characters in any text)."""

from __future__ import annotations

import html
from urllib.parse import quote, urlencode

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from .test_payments import insert_payments, pay
from .conftest import configure_payplug

PROPERTY = settings(max_examples=80, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def shown(answer) -> str:
    return html.unescape(answer.text)


def test_out_of_range_filters_and_page_links_are_a_400_with_a_message(panel):
    insert_payments(panel, 5)
    viewer = panel.admin("viewer")
    owner = panel.admin("owner")
    for path in ("/payments?amount=1e400", "/payments?amount=Infinity&currency=EUR", "/payments?amount=NaN",
                 "/payments?amount=99999999999999999999999", "/payments?amount=1e999999999"):
        answer = viewer.get(path)
        assert answer.status_code == 400 and "The amount must be written like 12.50." in shown(answer), path
    for path in ("/payments", "/inbox", "/audit"):
        for before in ("99999999999999999999999", "9" * 5000, "²", "-1", "1.5"):
            answer = owner.get(f"{path}?{urlencode({'before': before})}")
            assert answer.status_code == 400 and "The page link is broken" in shown(answer), (path, before)
        assert owner.get(f"{path}?before=3").status_code == 200
    nul = owner.get("/payments?q=%00")
    assert nul.status_code == 400 and "NUL character" in shown(nul)
    assert owner.get("/audit?actor=a%00b").status_code == 400
    # the widest dates are fine: every payment
    widest = viewer.get("/payments?date_from=0001-01-01&date_to=9999-12-31")
    assert widest.status_code == 200 and widest.text.count('data-payment="') == 5


def test_an_export_over_more_than_two_years_or_with_broken_dates_is_a_400(panel):
    accountant = panel.admin("accountant")
    for start, end, message in (("0001-01-01", "9999-12-31", "An export covers at most 24 months"),
                                ("2025-01-01", "2027-01-01", "An export covers at most 24 months"),
                                ("2026-02-30", "2026-03-01", "Dates are written YYYY-MM-DD."),
                                ("2026-03-01", "2026-02-01", "The end of the period is before its start."),
                                ("2026-01-01", "", "Dates are written YYYY-MM-DD.")):
        answer = accountant.get(f"/accounting/export.csv?{urlencode({'start': start, 'end': end})}")
        assert answer.status_code == 400 and message in shown(answer), (start, end, answer.status_code)
    last_day = accountant.get("/accounting/export.csv?start=9999-01-01&end=9999-12-31")
    assert last_day.status_code == 200 and last_day.text.startswith("JournalCode;")
    assert accountant.get("/accounting/export.csv?start=2025-01-01&end=2026-12-31").status_code == 200


def test_a_refund_of_an_impossible_amount_is_refused_with_a_message(panel):
    configure_payplug(panel, panel.sim.url)
    ref, payment = pay(panel)
    manager = panel.admin("manager")
    for amount in ("Infinity", "-Infinity", "NaN", "sNaN", "-1", "0", "1e400", "1e999999999",
                   "99999999999999999999999999", "12.345", "douze"):
        for confirmed in ("", "1"):
            answer = manager.post(f"/payments/{payment['id']}/refund", {"amount": amount, "confirmed": confirmed})
            assert answer.status_code == 303, (amount, confirmed, answer.status_code)  # back to the payment's page
            said = shown(manager.get(answer.headers["Location"].removeprefix("/psp/admin")))
            assert "is not an amount in EUR" in said or "The amount must be positive." in said, amount
    assert panel.shop.payments(ref)[0] == payment
    assert panel.sim.payments[payment["psp_reference"]]["amount_refunded"] == 0


# ------------------------------------------------------------------ property-based
odd_values = st.sampled_from([
    "1e400", "-1e400", "Infinity", "NaN", "sNaN", "99999999999999999999999", "9" * 5000, "-1", "0", "²", "½",
    "0001-01-01", "9999-12-31", "10000-01-01", "2026-02-30", "20260101", "\x00", "a\x00b", "%", "' OR 1=1 --",
    "paid", "invalid", "payplug", "live", "EUR", "XAU", "eur", "1", "12,50", " ", "\u202e", "𝟘",
])
query_values = st.one_of(odd_values, st.text(max_size=30))
query_keys = st.sampled_from(["status", "provider", "mode", "date_from", "date_to", "order_ref", "amount", "currency",
                              "q", "flagged", "before", "outcome", "actor", "action", "start", "end"])


def test_no_admin_query_string_gives_a_500(make_shop, sim):
    shop = make_shop(psp_providers={}, PSP_ADMIN_USER_LOADER=lambda: ("owner@example.com", "owner"),
                     PSP_SIREN="732829320", PSP_ACCOUNTING_TIMEZONE="Europe/Paris")
    client = shop.app.test_client()

    @PROPERTY
    @given(path=st.sampled_from(["/payments", "/inbox", "/audit", "/accounting/export.csv", "/accounting/export.fec"]),
           args=st.lists(st.tuples(query_keys | st.text(max_size=8), query_values), max_size=6))
    @example(path="/payments", args=[("amount", "1e400")])
    @example(path="/inbox", args=[("before", "99999999999999999999999")])
    @example(path="/audit", args=[("before", "99999999999999999999999")])
    @example(path="/accounting/export.csv", args=[("start", "0001-01-01"), ("end", "9999-12-31")])
    @example(path="/accounting/export.fec", args=[("start", "9999-01-01"), ("end", "9999-12-31")])
    @example(path="/accounting/export.fec", args=[("start", "0001-01-01"), ("end", "0001-12-31")])
    def check(path, args):
        query = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in args)
        answer = client.get(f"/psp/admin{path}?{query}")
        assert answer.status_code in (200, 400), (path, args, answer.status_code)
        if answer.status_code == 400:
            assert answer.mimetype == "text/html" and len(answer.get_data(as_text=True)) > 100

    check()
