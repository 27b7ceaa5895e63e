"""Words shown for the codes the panel stores (statuses, inbox outcomes, roles, modes), in the
merchant's language. The codes themselves stay in ``data-*`` attributes, URLs and exports."""

from __future__ import annotations

from ...i18n import lazy_gettext

LABELS = {
    "status": {
        "created": lazy_gettext("created"),
        "pending": lazy_gettext("pending"),
        "authorized": lazy_gettext("authorized"),
        "paid": lazy_gettext("paid"),
        "partially_refunded": lazy_gettext("partially refunded"),
        "refunded": lazy_gettext("refunded"),
        "failed": lazy_gettext("failed"),
        "cancelled": lazy_gettext("cancelled"),
        "expired": lazy_gettext("expired"),
    },
    "outcome": {
        "received": lazy_gettext("received"),
        "queued": lazy_gettext("queued"),
        "applied": lazy_gettext("applied"),
        "duplicate": lazy_gettext("duplicate"),
        "rejected": lazy_gettext("rejected"),
        "unmatched": lazy_gettext("unmatched"),
        "mismatch": lazy_gettext("mismatch"),
        "invalid": lazy_gettext("invalid"),
        "error": lazy_gettext("error"),
    },
    "role": {"owner": lazy_gettext("owner"), "manager": lazy_gettext("manager"), "accountant": lazy_gettext("accountant"), "viewer": lazy_gettext("viewer")},
    "mode": {"test": lazy_gettext("test"), "live": lazy_gettext("live")},
    "three_ds": {
        "authenticated": lazy_gettext("authenticated"),
        "frictionless": lazy_gettext("frictionless (no challenge)"),
        "attempted": lazy_gettext("attempted"),
        "not_authenticated": lazy_gettext("not authenticated"),
        "failed": lazy_gettext("failed"),
    },
    "source": {"notify": lazy_gettext("notification"), "return": lazy_gettext("buyer's return"),
               "api": lazy_gettext("API answer"), "fetch": lazy_gettext("check with the PSP"),
               "job": lazy_gettext("scheduled job")},
    "capture": {"auto": lazy_gettext("automatic"), "manual": lazy_gettext("manual"), "delayed": lazy_gettext("delayed")},
    # settlement report lines: what reconciliation made of them (and the status filter's choices), their kinds
    "settlement": {
        "problems": lazy_gettext("to check (different or unmatched)"),
        "all": lazy_gettext("all"),
        "matched": lazy_gettext("matched"),
        "booked": lazy_gettext("booked"),
        "difference": lazy_gettext("different amount"),
        "unmatched": lazy_gettext("matches nothing"),
    },
    "settlement_kind": {
        "capture": lazy_gettext("capture"),
        "refund": lazy_gettext("refund"),
        "chargeback": lazy_gettext("chargeback"),
        "chargeback_reversal": lazy_gettext("chargeback reversal"),
        "fee": lazy_gettext("fee"),
        "payout": lazy_gettext("payout"),
        "adjustment": lazy_gettext("adjustment"),
    },
}


def label(kind: str, code: str | None) -> str:
    """``label("status", "partially_refunded")`` → "partially refunded" / "partiellement remboursé";
    an unknown code is shown as it is."""
    if code is None:
        return ""
    word = LABELS.get(kind, {}).get(code)
    return str(word) if word is not None else code
