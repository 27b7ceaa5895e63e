"""The overview: money captured and refunded per provider and currency (today, 7 days, 30 days, a
chosen range), daily charts, why payments failed, each provider's health, and the counts that need
the merchant's eyes. Test and live money are never added together: the page shows one mode.

Days are UTC days of the payments' creation: a payment started on Monday and refunded on Friday
counts its capture and its refund on Monday. Every figure comes from one range scan of the payments'
``created_at`` index (at most :data:`MAX_RANGE_DAYS` + 30 days), so the page answers as fast with a
million payments as with a thousand (``make bench`` measures it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Callable, Iterable, Mapping

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from ..config import DEFAULTS
from ..i18n import gettext as _
from ..models import AuditEntry, Payment, PaymentEvent, utcnow
from ..overdue import count_overdue_requests

MODES = ("live", "test")
#: the longest range the page draws, in days
MAX_RANGE_DAYS = 366
#: a payment counts as paid (for the conversion) once the money was authorized or taken
PAID_STATUSES = ("authorized", "paid", "partially_refunded", "refunded")
FAILED_STATUSES = ("failed", "cancelled", "expired")
INBOX_PROBLEMS = ("rejected", "unmatched", "mismatch", "error", "invalid")
#: colours of the providers in the charts (presentation attributes: the panel's CSP allows no inline style)
COLOURS = {"adyen": "#0abf53", "paypal": "#003087", "payplug": "#6a4dff", "sips": "#e4002b", "hipay": "#f39200"}
OTHER_COLOUR = "#777777"
_THREE_DS = re.compile(r"3-?d|three.?d|authenticat", re.I)


def dashboard(session: Session, awaiting_after: timedelta = timedelta(seconds=DEFAULTS["PSP_AWAITING_PSP_AFTER"])
              ) -> dict[str, Any]:
    """The counts that need the merchant's eyes (each a link on the overview): payments flagged,
    notifications in trouble, and captures, refunds and cancellations the PSP has not confirmed
    after ``awaiting_after`` (``PSP_AWAITING_PSP_AFTER``)."""
    flagged = session.scalar(select(func.count()).select_from(Payment).where(Payment.flag.is_not(None))) or 0
    problems = session.scalar(
        select(func.count()).select_from(PaymentEvent).where(PaymentEvent.outcome.in_(INBOX_PROBLEMS))
    ) or 0
    overdue = count_overdue_requests(session, awaiting_after)
    return {"flagged": flagged, "inbox_problems": problems, "awaiting_psp_overdue": overdue}


@dataclass
class OverviewQuery:
    mode: str
    start: date  # the chosen range, both days included
    end: date
    today: date
    problems: list[str] = field(default_factory=list)

    def as_args(self) -> dict[str, str]:
        return {"mode": self.mode, "date_from": self.start.isoformat(), "date_to": self.end.isoformat()}


def overview_query(args: Mapping[str, str], today: date) -> OverviewQuery:
    """The page's mode (live unless ``mode=test``) and range (``date_from``/``date_to``, the last 30
    days by default); a broken or too long range is said and replaced by the default."""
    mode = args.get("mode") if args.get("mode") in MODES else "live"
    query = OverviewQuery(mode, today - timedelta(days=29), today, today)
    try:
        start = date.fromisoformat(args["date_from"]) if args.get("date_from") else query.start
        end = date.fromisoformat(args["date_to"]) if args.get("date_to") else query.end
    except ValueError:
        query.problems.append(_("Dates are written YYYY-MM-DD."))
        return query
    if start > end:
        query.problems.append(_("The range ends before it starts."))
    elif (end - start).days + 1 > MAX_RANGE_DAYS:
        query.problems.append(_("The range is at most %(days)s days.", days=MAX_RANGE_DAYS))
    else:
        query.start, query.end = start, end
    return query


def _day(value: Any) -> date:
    """A ``date()`` of SQL: a date on PostgreSQL, text on SQLite."""
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def _midnight(day: date) -> datetime:
    return datetime.combine(day, datetime.min.time())


def _days(start: date, end: date) -> list[date]:
    return [start + timedelta(days=n) for n in range((end - start).days + 1)]


def overview(session: Session, query: OverviewQuery, provider_names: Callable[[str], str] = str,
             awaiting_after: timedelta = timedelta(seconds=DEFAULTS["PSP_AWAITING_PSP_AFTER"])) -> dict[str, Any]:
    first = min(query.start, query.today - timedelta(days=29))
    last = max(query.end, query.today)
    in_window = (Payment.mode == query.mode, Payment.created_at >= _midnight(first),
                 Payment.created_at < _midnight(last + timedelta(days=1)))
    day = func.date(Payment.created_at)
    rows = session.execute(
        select(day, Payment.provider, Payment.currency, func.count(),
               func.sum(case((Payment.status.in_(PAID_STATUSES), 1), else_=0)),
               func.sum(Payment.captured_amount), func.sum(Payment.refunded_amount))
        .where(*in_window).group_by(day, Payment.provider, Payment.currency)
    ).all()
    daily = [(_day(d), provider, currency, int(started or 0), int(paid or 0), int(captured or 0), int(refunded or 0))
             for d, provider, currency, started, paid, captured, refunded in rows]

    periods = [("today", _("Today"), query.today, query.today),
               ("7d", _("7 days"), query.today - timedelta(days=6), query.today),
               ("30d", _("30 days"), query.today - timedelta(days=29), query.today),
               ("range", _("%(start)s to %(end)s", start=query.start.isoformat(), end=query.end.isoformat()),
                query.start, query.end)]
    totals = []
    for key, title, start, end in periods:
        lines: dict[tuple[str, str], dict[str, int]] = {}
        for d, provider, currency, started, paid, captured, refunded in daily:
            if start <= d <= end:
                line = lines.setdefault((provider, currency), {"captured": 0, "refunded": 0, "paid": 0, "started": 0})
                line["captured"] += captured
                line["refunded"] += refunded
                line["paid"] += paid
                line["started"] += started
        by_currency: dict[str, dict[str, int]] = {}
        for (provider, currency), line in lines.items():
            line["net"] = line["captured"] - line["refunded"]
            whole = by_currency.setdefault(currency, {"captured": 0, "refunded": 0, "net": 0})
            for k in whole:
                whole[k] += line[k]
        totals.append({
            "key": key, "title": title, "start": start, "end": end,
            "lines": [{"provider": p, "name": provider_names(p), "currency": c, **v} for (p, c), v in sorted(lines.items())],
            "currencies": [{"currency": c, **v} for c, v in sorted(by_currency.items())],
        })

    days = _days(query.start, query.end)
    currencies = sorted({c for _d, _p, c, *_rest in daily if _d >= query.start and _d <= query.end})
    providers = sorted({p for _d, p, *_rest in daily if _d >= query.start and _d <= query.end})
    captured_charts = []
    for currency in currencies:
        series = {p: {d: 0 for d in days} for p in providers}
        for d, provider, cur, _started, _paid, captured, _refunded in daily:
            if cur == currency and query.start <= d <= query.end:
                series[provider][d] += captured
        series = {p: v for p, v in series.items() if any(v.values())}
        captured_charts.append({"currency": currency, "days": days, "providers": [
            {"provider": p, "name": provider_names(p), "colour": COLOURS.get(p, OTHER_COLOUR), "values": v}
            for p, v in series.items()]})
    per_day: dict[date, list[int]] = {}
    for d, _provider, _currency, started, paid, *_amounts in daily:
        counts = per_day.setdefault(d, [0, 0])
        counts[0] += started
        counts[1] += paid
    conversion = []
    for d in days:
        started, paid = per_day.get(d, (0, 0))
        conversion.append({"day": d, "started": started, "paid": paid,
                           "percent": round(100 * paid / started) if started else None})

    for chart in captured_charts:
        chart["geometry"] = chart_geometry([(s["name"], s["colour"], [s["values"][d] for d in days])
                                            for s in chart["providers"]])
    conversion_chart = chart_geometry([(_("paid"), "#1f5f99", [c["percent"] or 0 for c in conversion])], maximum=100)
    return {"mode": query.mode, "totals": totals, "captured_charts": captured_charts, "conversion": conversion,
            "conversion_chart": conversion_chart, "days": days,
            "failures": failure_reasons(session, query, provider_names),
            "health": provider_health(session, provider_names),
            # the counts that need a look, at the top level as the overview always had them (more may join)
            **dashboard(session, awaiting_after)}


def failure_kind(status: str, reason: str | None) -> str:
    """declined, cancelled, expired or 3ds_failed: how a failed payment ended, in four words."""
    if status == "cancelled":
        return "cancelled"
    if status == "expired":
        return "expired"
    return "3ds_failed" if reason and _THREE_DS.search(reason) else "declined"


FAILURE_KINDS = ("declined", "3ds_failed", "cancelled", "expired")


def failure_reasons(session: Session, query: OverviewQuery, provider_names: Callable[[str], str] = str) -> list[dict]:
    """Per provider, the range's failed payments by kind (:func:`failure_kind`), with the PSPs' most
    frequent words for them."""
    rows = session.execute(
        select(Payment.provider, Payment.status, Payment.failure_reason, func.count())
        .where(Payment.mode == query.mode, Payment.created_at >= _midnight(query.start),
               Payment.created_at < _midnight(query.end + timedelta(days=1)), Payment.status.in_(FAILED_STATUSES))
        .group_by(Payment.provider, Payment.status, Payment.failure_reason)
    ).all()
    by_provider: dict[str, dict[str, Any]] = {}
    for provider, status, reason, count in rows:
        entry = by_provider.setdefault(provider, {"provider": provider, "name": provider_names(provider),
                                                  "kinds": dict.fromkeys(FAILURE_KINDS, 0), "reasons": {}})
        entry["kinds"][failure_kind(status, reason)] += count
        if reason:
            entry["reasons"][reason] = entry["reasons"].get(reason, 0) + count
    for entry in by_provider.values():
        entry["top"] = sorted(entry["reasons"].items(), key=lambda item: (-item[1], item[0]))[:3]
    return [by_provider[p] for p in sorted(by_provider)]


def provider_health(session: Session, provider_names: Callable[[str], str] = str,
                    providers: Iterable[str] | None = None) -> list[dict]:
    """Per provider: the last notification received, notifications refused or in error over the
    last 24 hours, and the last successful "test connection" (from the audit log)."""
    from ..providers import provider_names as all_providers

    now = utcnow()
    since = now - timedelta(hours=24)
    troubled = dict(session.execute(
        select(PaymentEvent.provider, func.count())
        .where(PaymentEvent.received_at >= since, PaymentEvent.outcome.in_(("rejected", "invalid", "error")))
        .group_by(PaymentEvent.provider)
    ).all())
    tested: dict[str, datetime] = {}
    for at, target, details in session.execute(
        select(AuditEntry.at, AuditEntry.target, AuditEntry.details)
        .where(AuditEntry.action == "provider.test_connection").order_by(AuditEntry.id.desc()).limit(500)
    ):
        if target and target not in tested and isinstance(details, dict) and details.get("ok") is True:
            tested[target] = at
    health = []
    for name in (providers if providers is not None else all_providers()):
        last = session.scalar(
            select(PaymentEvent.received_at).where(PaymentEvent.provider == name, PaymentEvent.source == "notify")
            .order_by(PaymentEvent.received_at.desc()).limit(1))
        health.append({"provider": name, "name": provider_names(name), "last_notification": last,
                       "troubled_24h": troubled.get(name, 0), "last_test_ok": tested.get(name)})
    return health


# ------------------------------------------------------------------------------------- chart drawing
@dataclass
class Bar:
    x: float
    y: float
    width: float
    height: float
    colour: str
    series: str
    index: int  # the day's position
    value: int


def chart_geometry(values_by_series: list[tuple[str, str, list[int]]], width: int = 720, height: int = 200,
                   maximum: int | None = None, headroom: int = 18) -> dict[str, Any]:
    """Stacked bars, one column per day: ``values_by_series`` is ``[(title, colour, [value per day])]``.
    Returns the bars (SVG coordinates, y down) and the scale's top, which is drawn ``headroom`` below
    the top edge (room for its label); pure arithmetic, drawn by the template."""
    count = max((len(v) for _t, _c, v in values_by_series), default=0)
    if not count:
        return {"bars": [], "top": 0, "width": width, "height": height, "step": 0}
    totals = [sum(v[i] for _t, _c, v in values_by_series) for i in range(count)]
    top = maximum if maximum is not None else max(totals) or 1
    step = width / count
    bar_width = max(step * 0.8, 1)
    bars = []
    for i in range(count):
        base = height
        for title, colour, values in values_by_series:
            if values[i] <= 0:
                continue
            h = (height - headroom) * values[i] / top
            base -= h
            bars.append(Bar(round(i * step + (step - bar_width) / 2, 2), round(base, 2), round(bar_width, 2),
                            round(h, 2), colour, title, i, values[i]))
    return {"bars": bars, "top": top, "width": width, "height": height, "step": step}
