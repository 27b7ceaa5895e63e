"""The "Payment links" page: the list (status, order, address filters; keyset pages), a link's
detail (its QR code, the payments of its order), and creating, sending again and cancelling —
through :class:`flask_psp.links.PaymentLinks`, which audits each."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Mapping

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..i18n import gettext as _
from ..links import STATUSES, LinkError, PaymentLinks, status_condition
from ..models import Payment, PaymentLink, utcnow
from .inputs import PAGE_SIZE


@dataclass
class LinkFilters:
    status: str = ""
    order_ref: str = ""
    email: str = ""

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> "LinkFilters":
        return cls(**{k: (args.get(k) or "").strip()[:255] for k in ("status", "order_ref", "email")})

    def as_args(self) -> dict[str, str]:
        return {k: v for k, v in self.__dict__.items() if v}


def links_page(session: Session, filters: LinkFilters, before_id: int | None = None,
               limit: int = PAGE_SIZE) -> tuple[list[PaymentLink], int | None, list[str]]:
    """Newest first, keyset-paginated on the id. Returns (rows, next before_id or None, problems)."""
    problems: list[str] = []
    query = select(PaymentLink)
    if filters.status:
        if filters.status in STATUSES:
            query = query.where(status_condition(filters.status, utcnow()))
        else:
            problems.append(_("Unknown status."))
    if filters.order_ref:
        query = query.where(PaymentLink.order_ref == filters.order_ref)
    if filters.email:
        query = query.where(func.lower(PaymentLink.email) == filters.email.lower())
    if before_id is not None:
        query = query.where(PaymentLink.id < before_id)
    if problems:
        return [], None, problems
    rows = list(session.scalars(query.order_by(PaymentLink.id.desc()).limit(limit + 1)))
    return rows[:limit], (rows[limit - 1].id if len(rows) > limit else None), problems


def parse_days(value: str | None) -> timedelta:
    """How long a new link stays valid: whole days, 1 to 366 (blank: 30)."""
    value = (value or "").strip()
    if not value:
        return timedelta(days=30)
    if not value.isascii() or not value.isdigit() or not 1 <= int(value) <= 366:
        raise LinkError(_("A link stays valid for 1 to 366 days."))
    return timedelta(days=int(value))


def create_link(links: PaymentLinks, form: Mapping[str, str], actor: str) -> PaymentLink:
    """A link from the panel's form (``order_ref``, ``email``, ``days``, ``locale``, ``note``,
    ``send``); mailed at once when ``send`` is ticked. Raises LinkError."""
    link = links.create(form.get("order_ref") or "", email=form.get("email"), expires_in=parse_days(form.get("days")),
                        locale=(form.get("locale") or None), note=form.get("note"), actor=actor)
    if form.get("send"):
        links.send(link, actor=actor)
    return link


def payments_of_link(session: Session, link: PaymentLink) -> list[Payment]:
    """The payments started from this link, and the one that paid it (read among the order's own:
    a handful, and JSON paths are queried differently by SQLite and PostgreSQL)."""
    query = select(Payment).where(Payment.order_ref == link.order_ref)
    rows = [p for p in session.scalars(query.order_by(Payment.id))
            if (p.extra or {}).get("payment_link") == link.token or p.id == link.payment_id]
    return rows
