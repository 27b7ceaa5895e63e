"""What every buyer page of the plugin sends besides its content: it cannot be framed by another site
(clickjacking of the checkout's buttons), its address — order reference, payment token — is not handed to
other sites as a Referer, and browsers do not guess its content type. The Sips checkout, a form that posts
itself to Sips' host, keeps working under those headers."""

from __future__ import annotations

from urllib.parse import quote

import pytest
import requests
from hypothesis import example, given, settings
from hypothesis import strategies as st

from flask_psp.simulator.sips import SipsSimulator
from tests.conftest import serving
from tests.sips.conftest import forms, page_parts, sips_settings

HEADERS = {
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
}


def protected(answer) -> bool:
    """The answer carries the three headers, and a CSP that forbids framing and nothing else a page needs."""
    policy = answer.headers.get("Content-Security-Policy", "")
    return (all(answer.headers.get(name) == value for name, value in HEADERS.items())
            and "frame-ancestors 'none'" in policy)


@pytest.fixture
def sips_sim():
    yield from serving(SipsSimulator(retry_delays=(30, 60, 120)))


def test_every_buyer_page_refuses_framing_and_keeps_its_address_to_itself(make_shop):
    shop = make_shop()
    buyer = shop.buyer()
    ref = buyer.place_order()
    checkout = buyer.http.get(f"{shop.url}/psp/checkout/{ref}", timeout=10)
    assert checkout.status_code == 200 and protected(checkout)
    expired = buyer.http.post(f"{shop.url}/psp/checkout/{ref}", data={"provider": "payplug"}, timeout=10)
    assert expired.status_code == 400 and protected(expired)  # no CSRF token: the error page
    to_psp = buyer.choose(ref)
    assert to_psp.status_code == 303 and protected(to_psp)  # the redirect to PayPlug sends no Referer on
    (payment,) = shop.payments(ref)
    token = payment["token"]
    for path in (f"/psp/return/{token}", f"/psp/cancel/{token}", f"/psp/payments/{token}/status.json",
                 "/psp/static/psp/psp.css", "/psp/static/psp/psp.js", "/psp/return/no-such-payment-token",
                 "/psp/checkout/no-such-order"):
        answer = requests.get(shop.url + path, timeout=10)
        assert protected(answer), (path, answer.status_code, dict(answer.headers))
    back = requests.post(f"{shop.url}/psp/return/{token}", data={"anything": "1"}, timeout=10)
    assert back.status_code == 200 and protected(back)
    # the merchant's pages too, including the sign-in redirect the panel's own page helper does not make
    assert protected(requests.get(f"{shop.url}/psp/admin/", allow_redirects=False, timeout=10))
    assert protected(requests.get(f"{shop.url}/psp/admin/login", timeout=10))
    # /notify answers a PSP's server, not a browser
    notified = requests.post(shop.notify_url("payplug"), data=b"{}", headers={"Content-Type": "application/json"},
                             timeout=10)
    assert notified.status_code == 400 and "X-Frame-Options" not in notified.headers


def test_the_sips_checkout_still_posts_itself_to_sips(make_shop, sips_sim):
    """Only frame-ancestors is in the CSP: the form may post to Sips' host and its script may run."""
    shop = make_shop(psp_providers=sips_settings(sips_sim))
    buyer = shop.buyer()
    ref = buyer.place_order()
    page = buyer.choose(ref, provider="sips")
    assert page.status_code == 200 and protected(page)
    policy = page.headers["Content-Security-Policy"]
    assert "form-action" not in policy and "script-src" not in policy and "default-src" not in policy
    (form,) = [f for f in forms(page.text) if f["id"] == "psp-redirect"]
    assert any(s.get("id") == "psp-autosubmit" for s in page_parts(page.text).scripts)
    sips_page = buyer.http.post(form["action"], data=form["fields"], timeout=10)
    assert sips_page.status_code == 200 and 'name="card_number"' in sips_page.text


# a path segment (no "/": that would be another route) and a query string, as anyone may type them
_SEGMENT = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",), exclude_characters="/"),
                   min_size=1, max_size=40).filter(lambda text: text not in (".", ".."))
_QUERY = st.dictionaries(st.text(max_size=10), st.text(max_size=20), max_size=4)


def test_any_address_under_the_buyer_pages_answers_protected_and_never_5xx(make_shop):
    shop = make_shop()
    client = shop.app.test_client()

    @settings(max_examples=80, deadline=None)
    @given(route=st.sampled_from(["checkout/{}", "return/{}", "cancel/{}", "payments/{}/status.json"]),
           segment=_SEGMENT, query=_QUERY, method=st.sampled_from(["GET", "POST"]))
    @example(route="checkout/{}", segment="a\x00b", query={}, method="GET")  # PostgreSQL refuses NUL
    @example(route="return/{}", segment="\x00" * 20, query={}, method="GET")
    @example(route="checkout/{}", segment="r" * 300, query={}, method="GET")
    def answers(route, segment, query, method):
        path = "/psp/" + route.format(quote(segment, safe=""))
        answer = client.open(path, method=method, query_string=query, data={"provider": segment})
        assert answer.status_code < 500
        if answer.status_code != 405:  # a method the route does not take: Flask answers before the blueprint
            assert protected(answer), (path, answer.status_code)

    answers()
