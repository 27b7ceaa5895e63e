"""Payment page customization: applied on the buyer's pages, validated, escaped; logo uploads."""

from __future__ import annotations

import re
import struct
import zlib
from urllib.parse import unquote, urljoin, urlsplit

import requests
from hypothesis import example, given, settings
from hypothesis import strategies as st

from .conftest import configure_payplug


def tiny_png() -> bytes:
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw = b"\x00\xff\x00\x00"
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def form(**values):
    base = {"brand_name": "", "logo_url": "", "primary_color": "", "accent_color": ""}
    base.update(values)
    return base


def test_brand_colour_and_messages_reach_the_buyer_in_both_languages(panel):
    configure_payplug(panel, panel.sim.url)
    manager = panel.admin("manager")
    answer = manager.post("/page", form(brand_name="Atelier Lumière", primary_color="#AA3300",
                                        **{"message-en-before": "Thanks for shopping with us",
                                           "message-fr-before": "Merci de votre commande",
                                           "message-en-success": "See you soon"}))
    assert answer.status_code == 303, answer.text
    buyer = panel.shop.buyer("en")
    ref = buyer.place_order()
    page = buyer.http.get(f"{panel.url}/psp/checkout/{ref}", timeout=10).text
    assert "Atelier Lumière" in page and "--psp-primary: #aa3300" in page
    assert "Thanks for shopping with us" in page
    french = panel.shop.buyer("fr")
    ref_fr = french.place_order()
    page_fr = french.http.get(f"{panel.url}/psp/checkout/{ref_fr}", timeout=10).text
    assert "Merci de votre commande" in page_fr and "Thanks for shopping" not in page_fr
    result = buyer.pay_on_payplug(buyer.choose(ref).headers["Location"])
    assert "See you soon" in result.text and "Atelier Lumière" in result.text


def test_invalid_values_are_refused_and_nothing_is_saved(panel):
    manager = panel.admin("manager")
    answer = manager.post("/page", form(primary_color="red;}</style>", logo_url="javascript:alert(1)",
                                        adyen_theme_id="x y<"))
    assert answer.status_code == 400
    assert "must be a colour such as" in answer.text and "must start with https://" in answer.text
    assert "may only hold letters" in answer.text
    buyer = panel.shop.buyer()
    page = buyer.http.get(f"{panel.url}/psp/checkout/{buyer.place_order()}", timeout=10).text
    assert "javascript:" not in page and "red;}" not in page


def test_everything_typed_is_escaped_on_buyer_and_admin_pages(panel):
    configure_payplug(panel, panel.sim.url)
    manager = panel.admin("manager")
    evil = '<script>alert("x")</script>'
    assert manager.post("/page", form(brand_name=evil, **{"message-en-before": "<img src=x onerror=alert(1)>"})).status_code == 303
    buyer = panel.shop.buyer()
    page = buyer.http.get(f"{panel.url}/psp/checkout/{buyer.place_order()}", timeout=10).text
    assert "<script>alert" not in page and "&lt;script&gt;alert" in page
    assert "<img src=x" not in page
    admin_page = manager.get("/page").text
    assert "<script>alert" not in admin_page and "<img src=x" not in admin_page


def test_logo_upload_checks_type_and_size_and_is_served(panel):
    manager = panel.admin("manager")
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    refused = manager.post("/page", form(), files={"logo": ("logo.png", svg, "image/png")})
    assert refused.status_code == 400 and "PNG, JPEG, GIF or WebP" in refused.text
    big = tiny_png() + b"\x00" * (600 * 1024)
    too_big = manager.post("/page", form(), files={"logo": ("big.png", big, "image/png")})
    assert too_big.status_code == 400 and "too large" in too_big.text
    ok = manager.post("/page", form(brand_name="Shop"), files={"logo": ("logo.png", tiny_png(), "image/png")})
    assert ok.status_code == 303
    page = manager.get("/page").text
    src = re.search(r'<img class="psp-logo" src="([^"]+)"', page).group(1)
    served = requests.get(panel.url + src, timeout=10)
    assert served.status_code == 200 and served.content == tiny_png()
    assert served.headers["Content-Type"] == "image/png" and served.headers["X-Content-Type-Options"] == "nosniff"
    buyer = panel.shop.buyer()
    checkout = buyer.http.get(f"{panel.url}/psp/checkout/{buyer.place_order()}", timeout=10).text
    assert src in checkout


def test_page_form_has_a_live_preview_and_notes_where_providers_style_their_page(panel):
    page = panel.admin("accountant").get("/page").text
    assert 'id="preview"' in page and 'data-preview="brand"' in page and "psp/admin.js" in page
    assert "PayPlug portal" in page
    assert "<fieldset disabled" in page  # accountants read, managers edit


def test_pending_and_cancel_messages_in_the_buyers_language(panel):
    configure_payplug(panel, panel.sim.url)
    manager = panel.admin("manager")
    answer = manager.post("/page", form(**{"message-en-pending": "We are waiting for the bank",
                                           "message-fr-pending": "Nous attendons la banque",
                                           "message-en-cancel": "Changed your mind? Your cart is kept",
                                           "message-fr-cancel": "Votre panier vous attend"}))
    assert answer.status_code == 303, answer.text
    french = panel.shop.buyer("fr")
    ref = french.place_order()
    payment_url = french.choose(ref).headers["Location"]
    token = panel.shop.payments(ref)[0]["token"]
    pending = french.http.get(f"{panel.url}/psp/return/{token}", timeout=10)  # back before paying anything
    assert 'data-status="pending"' in pending.text and "Nous attendons la banque" in pending.text
    assert "waiting for the bank" not in pending.text
    cancelled = french.pay_on_payplug(payment_url, action="cancel")
    assert 'data-status="cancelled"' in cancelled.text and "Votre panier vous attend" in cancelled.text

    english = panel.shop.buyer("en")
    ref = english.place_order()
    cancelled = english.pay_on_payplug(english.choose(ref).headers["Location"], action="cancel")
    assert "Changed your mind? Your cart is kept" in cancelled.text


def test_an_https_logo_address_is_used_as_given_and_escaped(panel):
    configure_payplug(panel, panel.sim.url)
    manager = panel.admin("manager")
    url = 'https://cdn.example/logo.png?v=1&x="><script>alert(1)</script>'
    assert manager.post("/page", form(logo_url=url)).status_code == 303
    buyer = panel.shop.buyer()
    checkout = buyer.http.get(f"{panel.url}/psp/checkout/{buyer.place_order()}", timeout=10).text
    assert 'src="https://cdn.example/logo.png?v=1&amp;x=&#34;&gt;&lt;script&gt;' in checkout.replace("&#x27;", "'")
    assert "<script>alert(1)" not in checkout
    plain = manager.post("/page", form(logo_url="http://cdn.example/logo.png"))
    assert plain.status_code == 400 and "must start with https://" in plain.text


# ---------------------------------------------------------------------------- logo addresses on this site
ASSETS = "/psp/admin/assets/"
KEY = "0f" * 32


def test_a_logo_address_on_this_site_names_an_uploaded_logo_once_normalised(panel):
    manager = panel.admin("manager")
    for sneaky in (ASSETS + "../users", ASSETS + "%2e%2e/%2e%2e/checkout/x", ASSETS + ".%2E/audit",
                   ASSETS + KEY + "/../../users", ASSETS + "..\\users", ASSETS + KEY + "%2f..%2f..%2fusers"):
        answer = manager.post("/page", form(logo_url=sneaky))
        assert answer.status_code == 400, sneaky
        assert "must start with https://, or be a logo uploaded here" in answer.text
    assert manager.post("/page", form(), files={"logo": ("logo.png", tiny_png(), "image/png")}).status_code == 303
    src = re.search(r'<img class="psp-logo" src="([^"]+)"', manager.get("/page").text).group(1)
    roundabout = src.replace(ASSETS, ASSETS + "x/%2e%2e/./")
    assert manager.post("/page", form(logo_url=roundabout)).status_code == 303
    buyer = panel.shop.buyer()
    checkout = buyer.http.get(f"{panel.url}/psp/checkout/{buyer.place_order()}", timeout=10).text
    assert f'src="{src}"' in checkout and "%2e" not in checkout  # stored as the browser would load it


def browser_path(url: str) -> str:
    """The path a browser asks for when a page of the shop names ``url`` (``\\`` read as ``/``,
    ``%2e`` as a dot in dot segments), as the server decodes it."""
    unified = re.sub("%2e", ".", url.replace("\\", "/"), flags=re.IGNORECASE)
    return unquote(urlsplit(urljoin("https://shop.example/psp/checkout/ORDER", unified)).path)


PIECES = ["..", ".", "%2e", "%2E%2e", ".%2e", "%2f", "\\", "assets", "admin", "psp", "users", KEY, "", "x", "?v=1",
          "#top", "/", "%00", "%252e"]


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.lists(st.sampled_from(PIECES), max_size=8).map(lambda parts: ASSETS + "/".join(parts)),
                 st.text(max_size=80).map(lambda tail: ASSETS + tail), st.text(max_size=80)))
@example(ASSETS + "%2f/../../" + KEY)  # found by Hypothesis: %2f is no slash to a browser resolving "..", one to our decoder
def test_an_accepted_logo_address_is_exactly_the_asset_a_browser_would_load(url):
    from flask_psp.admin.page import own_asset_url

    accepted = own_asset_url(url, ASSETS)
    if accepted is not None:
        assert re.fullmatch(re.escape(ASSETS) + "[0-9a-f]{64}", accepted)
        assert browser_path(url) == accepted, url
