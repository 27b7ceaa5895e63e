"""What a stranger can make the plugin store or compute through ``POST /notify/<provider>``: bodies
over ``PSP_MAX_NOTIFICATION_BYTES`` are answered 413 before they are read and leave a short inbox
row; malformed bodies of any shape (deep nesting included) are a 400 kept as ``invalid``; and,
property-based, no bytes, headers, content type or query string give a 5xx, move a payment, or go
unrecorded."""

from __future__ import annotations

import html
import io
import json
import socket
from urllib.parse import quote, urlencode, urlsplit

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.conftest import TEST_KEY

PROVIDERS = ("adyen", "paypal", "payplug", "sips", "hipay")
NESTED = "[" * 100_000 + "]" * 100_000
PROPERTY = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                           HealthCheck.data_too_large])


def every_provider(sim):
    """All five providers in test mode, their API endpoints on the PayPlug simulator (PayPlug's
    re-fetch is real; the others' calls, if any, get the simulator's 404)."""
    blocks = {
        "adyen": {"api_key": "adyen-api-key", "merchant_account": "ShopECOM", "hmac_key": "44" * 32},
        "paypal": {"client_id": "paypal-client", "client_secret": "paypal-secret", "webhook_id": "WH-1"},
        "payplug": {"secret_key": TEST_KEY},
        "sips": {"merchant_id": "002001000000001", "secret_key": "002001000000001_KEY1", "key_version": "1"},
        "hipay": {"api_username": "hipay-user", "api_password": "hipay-password", "secret_passphrase": "passphrase"},
    }
    return {name: {"enabled": True, "mode": "test", "test": {**block, "endpoint": sim.url}}
            for name, block in blocks.items()}


def inbox(shop):
    from flask_psp.models import PaymentEvent

    with shop.app.app_context():
        session = shop.app.extensions["psp"].db.session
        rows = session.scalars(sa.select(PaymentEvent).order_by(PaymentEvent.id)).all()
        result = [{"id": r.id, "provider": r.provider, "outcome": r.outcome, "body": r.body, "headers": r.headers,
                   "detail": r.outcome_detail, "content_type": r.content_type} for r in rows]
        session.remove()
        return result


def newest_row(shop):
    """(how many inbox rows, the newest as :func:`inbox` shows it)."""
    from flask_psp.models import PaymentEvent

    with shop.app.app_context():
        session = shop.app.extensions["psp"].db.session
        count = session.scalar(sa.select(sa.func.count()).select_from(PaymentEvent))
        r = session.scalars(sa.select(PaymentEvent).order_by(PaymentEvent.id.desc()).limit(1)).first()
        row = r and {"provider": r.provider, "outcome": r.outcome, "body": r.body, "detail": r.outcome_detail}
        session.remove()
        return count, row


def payments(shop):
    from flask_psp.models import Payment

    with shop.app.app_context():
        session = shop.app.extensions["psp"].db.session
        rows = session.scalars(sa.select(Payment).order_by(Payment.id)).all()
        result = [(p.id, p.status, p.authorized_amount, p.captured_amount, p.refunded_amount, p.flag, p.paid_at)
                  for p in rows]
        session.remove()
        return result


def add_payments(shop):
    """One pending payment per provider, whose references the hostile bodies below use."""
    from flask_psp.models import Payment

    with shop.app.app_context():
        session = shop.app.extensions["psp"].db.session
        for i, name in enumerate(PROVIDERS):
            session.add(Payment(order_ref=f"HOSTILE-{i}", provider=name, mode="test", amount=1450, currency="EUR",
                                status="pending", token=f"hostiletoken{i:02d}abcdefghijkl",
                                psp_reference=f"PSPREF{i}", email="buyer@example.com"))
        session.commit()
        session.remove()


def raw_exchange(url: str, head: str, body_parts=(), timeout=10.0) -> tuple[int, str]:
    """Send a request head (and body parts) over a plain socket and read the answer: shows what
    the server answers before a client has sent its body."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=timeout) as sock:
        sock.sendall(head.encode("latin-1"))
        try:
            for part in body_parts:
                sock.sendall(part)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed without reading it all: the answer is there
        answer = b""
        while not _complete(answer):
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    status_line, _sep, rest = answer.decode("latin-1").partition("\r\n")
    return int(status_line.split()[1]), rest


def _complete(answer: bytes) -> bool:
    head, sep, body = answer.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _colon, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return False


# ------------------------------------------------------------------ size limit
def test_a_body_declared_over_the_limit_is_answered_413_before_it_is_sent(make_shop, sim):
    shop = make_shop(psp_providers=every_provider(sim))
    size = 100 * 1024 * 1024
    head = (f"POST /psp/notify/adyen HTTP/1.1\r\nHost: shop\r\nContent-Type: application/json\r\n"
            f"Content-Length: {size}\r\nAuthorization: Basic c2VjcmV0LXVzZXI6c2VjcmV0LXBhc3N3b3Jk\r\n"
            f"X-Request-Id: big-1\r\n\r\n")
    # only the head is sent: the answer comes without the 100 MB
    status, text = raw_exchange(shop.url, head, [b'{"live": "false", "notificationItems": ['])
    assert status == 413 and "too large" in text
    (row,) = inbox(shop)
    assert (row["provider"], row["outcome"], row["body"]) == ("adyen", "invalid", "")
    assert f"{size} bytes" in row["detail"] and "PSP_MAX_NOTIFICATION_BYTES" in row["detail"]
    headers = {k.lower(): v for k, v in row["headers"].items()}
    assert headers["content-length"] == str(size) and headers["x-request-id"] == "big-1"
    assert "c2VjcmV0LXVzZXI6c2VjcmV0LXBhc3N3b3Jk" not in json.dumps(row["headers"])  # masked like any row


def test_a_chunked_body_is_read_up_to_the_limit_and_then_refused(make_shop, sim):
    shop = make_shop(psp_providers=every_provider(sim), PSP_MAX_NOTIFICATION_BYTES=64 * 1024)
    head = "POST /psp/notify/hipay HTTP/1.1\r\nHost: shop\r\nContent-Type: application/x-www-form-urlencoded\r\n" \
           "Transfer-Encoding: chunked\r\n\r\n"
    chunk = b"a" * 16 * 1024
    parts = [b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(40)] + [b"0\r\n\r\n"]  # 640 KiB
    status, _text = raw_exchange(shop.url, head, parts)
    assert status == 413
    (row,) = inbox(shop)
    assert (row["provider"], row["outcome"], row["body"]) == ("hipay", "invalid", "")
    assert "65536 bytes" in row["detail"] and "without Content-Length" in row["detail"]
    # exactly at the limit, chunked too: read and kept
    exact = b"status=118&" + b"a" * (64 * 1024 - 11)
    status, _text = raw_exchange(shop.url, head, [b"%x\r\n%s\r\n" % (len(exact), exact), b"0\r\n\r\n"])
    assert status == 403  # unsigned: refused, but stored in full
    assert inbox(shop)[-1]["body"] == exact.decode()


def test_the_limit_is_one_mebibyte_by_default_and_per_route(make_shop, sim):
    from flask_psp.config import DEFAULTS

    assert DEFAULTS["PSP_MAX_NOTIFICATION_BYTES"] == 1024 * 1024
    # the app's own MAX_CONTENT_LENGTH does not apply to notifications: the route has its own
    shop = make_shop(psp_providers=every_provider(sim), MAX_CONTENT_LENGTH=1000)
    client = shop.app.test_client()
    at_limit = client.post("/psp/notify/payplug", data=b" " * (1024 * 1024), content_type="application/json")
    assert at_limit.status_code == 400  # read, and not JSON
    over = client.post("/psp/notify/payplug", data=b" " * (1024 * 1024 + 1), content_type="application/json")
    assert over.status_code == 413
    rows = inbox(shop)
    assert [(r["outcome"], len(r["body"])) for r in rows] == [("invalid", 1024 * 1024), ("invalid", 0)]


# ------------------------------------------------------------------ malformed bodies
@pytest.mark.parametrize("provider", PROVIDERS)
def test_deeply_nested_json_is_a_400_kept_as_invalid_and_shown_in_the_admin(make_shop, sim, provider):
    shop = make_shop(psp_providers=every_provider(sim),
                     PSP_ADMIN_USER_LOADER=lambda: ("owner@example.com", "owner"))
    client = shop.app.test_client()
    moderately = "[" * 900 + "]" * 900  # parses, but deeper than any PSP nests
    objects = '{"a":' * 50_000 + "1" + "}" * 50_000
    for body, ctype in ((NESTED, "application/json"), (moderately, "application/json"),
                        (objects, "application/x-www-form-urlencoded"), (NESTED, "text/plain")):
        answer = client.post(f"/psp/notify/{provider}", data=body, content_type=ctype)
        assert answer.status_code == 400, (provider, ctype, answer.status_code, answer.get_data(as_text=True)[:200])
        row = inbox(shop)[-1]
        assert (row["provider"], row["outcome"], len(row["body"])) == (provider, "invalid", len(body))
        page = client.get(f"/psp/admin/inbox/{row['id']}")
        shown = html.unescape(page.get_data(as_text=True))
        assert page.status_code == 200 and ("[[[[" in shown or '{"a":{"a":' in shown)
    assert client.get("/psp/admin/inbox").status_code == 200


def _nesting(value) -> int:
    """How deeply lists and objects nest, by its definition (recursive: for small values only)."""
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list):
        return 1 + max((_nesting(child) for child in value), default=0)
    return 0


_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=3),
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=2), inner, max_size=3),
                     max_leaves=60)


@settings(max_examples=300, deadline=None)
@given(inner=_JSON, wrapping=st.integers(min_value=0, max_value=40), as_object=st.booleans())
def test_json_nested_up_to_32_levels_is_read_and_deeper_is_malformed(inner, wrapping, as_object):
    from flask_psp.providers.base import MAX_JSON_DEPTH, MalformedNotification, parse_json

    value = inner
    for _ in range(wrapping):
        value = {"k": value} if as_object else [value]
    body = json.dumps(value).encode()
    if _nesting(value) <= MAX_JSON_DEPTH:
        assert parse_json(body) == value
    else:
        with pytest.raises(MalformedNotification, match="nested more than 32 levels deep"):
            parse_json(body)


def test_the_admin_shows_any_stored_body_even_one_stored_before_the_limits(make_shop, sim):
    """Rows already in the inbox from before these limits: a nested body sent to HiPay (the page
    was a permanent 500), and a 6 MB body (a page of that size)."""
    from flask_psp.ledger import Ledger

    shop = make_shop(psp_providers=every_provider(sim),
                     PSP_ADMIN_USER_LOADER=lambda: ("owner@example.com", "owner"))
    with shop.app.app_context():
        session = shop.app.extensions["psp"].db.session
        nested = Ledger.receive("hipay", NESTED, content_type="application/x-www-form-urlencoded")
        nested.outcome = "rejected"
        huge = Ledger.receive("adyen", '{"a": "' + "x" * 6_000_000 + '"}', content_type="application/json")
        session.add_all([nested, huge])
        session.commit()
        ids = nested.id, huge.id
        session.remove()
    client = shop.app.test_client()
    page = client.get(f"/psp/admin/inbox/{ids[0]}")
    assert page.status_code == 200 and "[[[[" in page.get_data(as_text=True)
    page = client.get(f"/psp/admin/inbox/{ids[1]}")
    assert page.status_code == 200 and "too large to show" in page.get_data(as_text=True)
    assert len(page.data) < 1024 * 1024
    assert client.get("/psp/admin/inbox").status_code == 200


# ------------------------------------------------------------------ property-based
SIGNATURE_HEADERS = ("X-ALLOPASS-SIGNATURE", "PayPal-Transmission-Id", "PayPal-Transmission-Sig",
                     "PayPal-Transmission-Time", "PayPal-Cert-Url", "PayPal-Auth-Algo", "Authorization",
                     "Content-Encoding", "X-Forwarded-For", "User-Agent", "X-Api-Key", "Cookie")
CONTENT_TYPES = (None, "application/json", "application/json; charset=latin-1", "application/x-www-form-urlencoded",
                 "text/plain", "multipart/form-data; boundary=xyz", "application/xml", "x" * 300)
header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60)
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                    st.text(max_size=20), st.sampled_from(["1e400", "-1", "NaN", "Infinity", "118", "PSPREF0"]))
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
    st.sampled_from(["id", "object", "live", "notificationItems", "NotificationRequestItem", "is_live", "amount",
                     "event_type", "resource", "status", "x"]) | st.text(max_size=8), inner, max_size=4), max_leaves=20)
form_fields = st.dictionaries(
    st.sampled_from(["status", "transaction_reference", "captured_amount", "authorized_amount", "currency", "test",
                     "Data", "Seal", "Encode", "InterfaceVersion", "state", "order[id]"]) | st.text(max_size=10),
    st.sampled_from(["118", "PSPREF4", "0.01", "1e400", "Infinity", "EUR", "true", "responseCode=00|transactionReference=PSPREF3",
                     "base64"]) | st.text(max_size=20), max_size=8)
bodies = st.one_of(
    st.binary(max_size=300),
    st.sampled_from([b"\x00", b'{"id": "pay_1\x00", "object": "payment"}', b"status=118\x00&transaction_reference=PSPREF4",
                     '{"id": "pay_\u0000"}'.encode()]),
    st.text(max_size=200).map(lambda t: t.encode("utf-8")),
    json_values.map(lambda v: json.dumps(v).encode()),
    form_fields.map(lambda f: urlencode(f).encode()),
    st.integers(1, 5000).map(lambda n: ("[" * n + "]" * n).encode()),
    st.integers(1, 3000).map(lambda n: ('{"a":' * n + "0" + "}" * n).encode()),
    st.integers(3000, 6000).map(lambda n: b"9" * n),
    st.integers(4000, 9000).map(lambda n: b"a=" + b"b" * n),  # around the test's size limit
)


def test_no_notification_gives_a_5xx_moves_a_payment_or_goes_unrecorded(make_shop, sim):
    limit = 5000
    shop = make_shop(psp_providers=every_provider(sim), PSP_MAX_NOTIFICATION_BYTES=limit)
    add_payments(shop)
    before = payments(shop)
    client = shop.app.test_client()

    @PROPERTY
    @given(provider=st.sampled_from(PROVIDERS), body=bodies, content_type=st.sampled_from(CONTENT_TYPES),
           headers=st.dictionaries(st.sampled_from(SIGNATURE_HEADERS), header_text, max_size=4),
           query=st.text(max_size=30))
    @example(provider="payplug", body=b'{"id": "pay_1\x00"}', content_type="application/json", headers={}, query="")
    @example(provider="adyen", body=NESTED.encode(), content_type="application/json", headers={}, query="")
    @example(provider="hipay", body=b"a=" * 3000, content_type="x" * 300, headers={}, query="a=\x00")
    def check(provider, body, content_type, headers, query):
        known, _row = newest_row(shop)
        if content_type is not None:
            headers = {**headers, "Content-Type": content_type}
        # the body as given, byte for byte (the test client would build a multipart body itself)
        answer = client.post(f"/psp/notify/{provider}?{quote(query, safe='=&')}", input_stream=io.BytesIO(body),
                             content_length=len(body), headers=headers)
        assert answer.status_code < 500, answer.get_data(as_text=True)[:300]
        count, row = newest_row(shop)
        assert count == known + 1, "every notification leaves one inbox row"
        assert row["provider"] == provider
        if len(body) > limit:
            assert answer.status_code == 413 and (row["outcome"], row["body"]) == ("invalid", "")
        else:
            assert row["body"] == body.decode("utf-8", "replace").replace("\x00", "\ufffd")
            assert row["outcome"] in ("invalid", "rejected", "unmatched") and answer.status_code in (200, 400, 401, 403)
        assert payments(shop) == before

    check()
