"""Stripe webhooks for the peer, signed as Stripe documents it ("Verify webhook signatures"): the
``Stripe-Signature`` header is ``t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>" keyed with the
endpoint's signing secret>``. Written from the documentation, not with the stripe library: the peer
verifies them with it."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

WEBHOOK_PATH = "/payments/process/stripe/"


def signature_header(body: bytes, secret: str, timestamp: int | None = None) -> str:
    timestamp = int(time.time()) if timestamp is None else timestamp
    signed = f"{timestamp}.".encode() + body
    return f"t={timestamp},v1={hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()}"


def checkout_completed(token: str, index: int, amount: int = 1450, currency: str = "eur") -> bytes:
    """The ``checkout.session.completed`` event of a paid Checkout Session (the fields Stripe's
    event reference shows; the peer reads type, client_reference_id, status and payment_status)."""
    now = int(time.time())
    event = {
        "id": f"evt_bench{index:014d}",
        "object": "event",
        "api_version": "2024-06-20",
        "created": now,
        "type": "checkout.session.completed",
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "data": {"object": {
            "id": f"cs_test_bench{index:07d}",
            "object": "checkout.session",
            "amount_subtotal": amount,
            "amount_total": amount,
            "client_reference_id": token,
            "currency": currency,
            "customer_email": "buyer@example.com",
            "livemode": False,
            "mode": "payment",
            "payment_intent": f"pi_bench{index:014d}",
            "payment_status": "paid",
            "status": "complete",
        }},
    }
    return json.dumps(event).encode()
