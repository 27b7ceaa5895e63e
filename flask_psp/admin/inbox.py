"""The inbox: notifications and API answers as received, their bodies shown masked, and
"process again" for a stored notification."""

from __future__ import annotations

import json
from urllib.parse import parse_qsl

from sqlalchemy import select
from sqlalchemy.orm import Session, defer

from ..i18n import gettext as _
from ..models import PaymentEvent
from ..providers.base import InboundRequest, MalformedNotification, NotAuthentic, ProofUnavailable, ProviderError, parse_json
from ..secret_box import is_secret_name, mask, mask_secrets
from .audit import audit
from .inputs import PAGE_SIZE
from .providers import provider_class

OUTCOMES = ("received", "queued", "applied", "duplicate", "rejected", "unmatched", "mismatch", "invalid", "error")


def events_page(session: Session, outcome: str = "", provider: str = "", before_id: int | None = None,
                payment_id: int | None = None, limit: int = PAGE_SIZE) -> tuple[list[PaymentEvent], int | None]:
    query = select(PaymentEvent).options(defer(PaymentEvent.body))  # the list shows no body
    if outcome in OUTCOMES:
        query = query.where(PaymentEvent.outcome == outcome)
    if provider:
        query = query.where(PaymentEvent.provider == provider)
    if payment_id:
        query = query.where(PaymentEvent.payment_id == payment_id)
    if before_id:
        query = query.where(PaymentEvent.id < before_id)
    rows = list(session.scalars(query.order_by(PaymentEvent.id.desc()).limit(limit + 1)))
    return rows[:limit], (rows[limit - 1].id if len(rows) > limit else None)


#: bodies the event page reads and masks (the notify route keeps them under PSP_MAX_NOTIFICATION_BYTES;
#: older rows may be larger), and how much of one it shows
BODY_READ_LIMIT = 4 * 1024 * 1024
BODY_SHOWN_LIMIT = 512 * 1024


def masked_body(row: PaymentEvent) -> str:
    """The raw body for display, with values of secret-looking keys masked: JSON pretty-printed,
    forms one field a line, anything else (JSON nested too deep included) as it is. Cut at
    :data:`BODY_SHOWN_LIMIT` characters; a body over :data:`BODY_READ_LIMIT` is not shown."""
    body = row.body or ""
    if len(body) > BODY_READ_LIMIT:
        return _("(a body of %(size)s characters: too large to show)", size=len(body))
    ctype = (row.content_type or "").lower()
    shown = body
    if "json" in ctype or body.lstrip().startswith(("{", "[")):
        try:
            # bounded depth: what is deeper is shown as received, and masking cannot recurse without bound
            shown = json.dumps(mask_secrets(parse_json(body)), indent=2, ensure_ascii=False, sort_keys=True)
        except MalformedNotification:
            shown = body
    elif "x-www-form-urlencoded" in ctype:
        pairs = parse_qsl(body, keep_blank_values=True)
        shown = "\n".join(f"{k}={mask(v) if is_secret_name(k) and v else v}" for k, v in pairs)
    if len(shown) > BODY_SHOWN_LIMIT:
        return shown[:BODY_SHOWN_LIMIT] + "\n" + _("… (%(count)s more characters not shown)",
                                                     count=len(shown) - BODY_SHOWN_LIMIT)
    return shown


def can_process_again(row: PaymentEvent) -> bool:
    """A notification as received from the PSP (not our own API answers, not a batch's child)."""
    return row.source == "notify" and bool(row.body) and row.parent_id is None


def process_again(service, session: Session, row: PaymentEvent, actor: str) -> tuple[bool, str]:
    """Run a stored notification through its provider's proof and the ledger once more. The proof is
    checked again (a forged body stays refused) and the dedupe keys make it idempotent."""
    if not can_process_again(row):
        return False, _("Only notifications received from a provider can be processed again.")
    cls = provider_class(row.provider)
    if cls is None:
        return False, _("The %(provider)s module is not available.", provider=row.provider)
    ctype = row.content_type or ""
    form = dict(parse_qsl(row.body, keep_blank_values=True)) if "x-www-form-urlencoded" in ctype.lower() else {}
    inbound = InboundRequest(body=row.body.encode("utf-8"), headers=dict(row.headers or {}), form=form,
                             content_type=row.content_type)
    try:
        provider = service.notification_provider(row.provider, inbound)
        messages = provider.verify_notification(inbound)
    except (NotAuthentic, MalformedNotification) as exc:
        audit(session, actor, "inbox.process_again", f"event {row.id}", {"result": "refused"})
        return False, _("Still refused: %(reason)s", reason=str(exc))
    except ProofUnavailable as exc:
        audit(session, actor, "inbox.process_again", f"event {row.id}", {"result": "proof unavailable"})
        return False, _("The provider cannot confirm it right now (%(reason)s). Try again later.", reason=str(exc))
    except ProviderError as exc:
        return False, exc.message
    try:
        outcomes = service.ledger.apply_all(row, messages)
    except Exception as exc:  # noqa: BLE001 - PostProcessingError and friends: the row says why
        audit(session, actor, "inbox.process_again", f"event {row.id}", {"result": "error"})
        return False, _("Processing failed: %(reason)s", reason=str(exc))
    summary = ", ".join(o.outcome + (f" ({o.detail})" if o.detail else "") for o in outcomes) or "-"
    audit(session, actor, "inbox.process_again", f"event {row.id}", {"result": [o.outcome for o in outcomes]})
    return True, _("Processed again: %(summary)s", summary=summary)
