"""What the merchant sets in the panel reaching the buyer and each provider: display order, amount and
currency limits, the 3-D Secure policy mapped onto each provider's own field, and the page look passed
where the provider's API takes it (PROVIDERS.md)."""

from __future__ import annotations

import re

import pytest

from flask_psp.simulator import create_simulator

from .test_provider_forms import BASE, CONNECTIONS, creds

NAMES = ("adyen", "hipay", "paypal", "payplug", "sips")


@pytest.fixture
def simulators():
    sims = {}
    servers = []
    for name in NAMES:
        sims[name] = create_simulator(name)
        servers.append(sims[name].serve())
    yield sims
    for name, sim in sims.items():
        sim.notifier.close()
    for server in servers:
        server.stop()


def enable_all(panel, sims, positions, **settings):
    owner = panel.admin("owner")  # the endpoints (the simulators) are the owner's to set
    for name in NAMES:
        good, _wrongs = CONNECTIONS[name]
        form = {**BASE, "enabled": "on", "position": str(positions[name]), **settings.get(name, {}),
                **creds("test", good(sims[name]), sims[name].url)}
        answer = owner.post(f"/providers/{name}", form)
        assert answer.status_code == 303, (name, answer.text)
    return owner


def offered(page_text):
    return re.findall(r'name="provider" value="([a-z]+)"', page_text)


def hidden_fields(html):
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', html))


def test_display_order_and_limits_shape_the_checkout(panel, simulators):
    enable_all(panel, simulators, {"hipay": 1, "adyen": 2, "paypal": 3, "sips": 4, "payplug": 5}, **{
        "paypal": {"max_amount": "20.00"},            # the 39.90 map is above it
        "sips": {"min_amount": "40,00"},               # and below this one
        "adyen": {"currencies": "USD, GBP"},           # EUR orders never see Adyen
    })
    buyer = panel.shop.buyer()
    mug = buyer.place_order("MUG-01")  # 14.50 EUR
    assert offered(buyer.http.get(f"{panel.url}/psp/checkout/{mug}", timeout=10).text) == ["hipay", "paypal", "payplug"]
    big = buyer.place_order("MAP-03")  # 39.90 EUR
    assert offered(buyer.http.get(f"{panel.url}/psp/checkout/{big}", timeout=10).text) == ["hipay", "payplug"]
    # a provider the page does not offer cannot be forced by posting its name
    assert buyer.choose(big, "paypal").status_code == 400

    manager = panel.admin("manager")
    manager.post("/providers/payplug", {**BASE, "enabled": "on", "position": "-1",
                                        **creds("test", {}, simulators["payplug"].url)})
    assert offered(buyer.http.get(f"{panel.url}/psp/checkout/{big}", timeout=10).text) == ["payplug", "hipay"]


def test_the_look_and_the_3ds_policy_reach_each_provider(panel, simulators):
    enable_all(panel, simulators, {n: i for i, n in enumerate(NAMES)},
               **{n: {"three_ds": "always"} for n in NAMES})
    manager = panel.admin("manager")
    answer = manager.post("/page", {"brand_name": "Atelier Lumière", "primary_color": "#aa3300",
                                    "adyen_theme_id": "th-adyen-42", "sips_template_name": "lumiere_tpl",
                                    "hipay_theme_code": "th_hipay_7"})
    assert answer.status_code == 303, answer.text
    buyer = panel.shop.buyer("fr-FR,fr;q=0.9")

    answer = buyer.choose(buyer.place_order(), "adyen")
    session = simulators["adyen"].sessions[answer.headers["Location"].rstrip("/").split("/")[-1]]["request"]
    assert session["themeId"] == "th-adyen-42"
    assert session["authenticationData"] == {"attemptAuthentication": "always"}

    answer = buyer.choose(buyer.place_order(), "hipay")
    fields = simulators["hipay"].orders[answer.headers["Location"].rstrip("/").split("/")[-1]]["fields"]
    assert fields["theme_code"] == "th_hipay_7" and fields["merchant_display_name"] == "Atelier Lumière"
    assert fields["authentication_indicator"] == "2"

    answer = buyer.choose(buyer.place_order(), "paypal")
    order = simulators["paypal"].orders[answer.headers["Location"].split("token=")[1]]
    assert order["context"]["brand_name"] == "Atelier Lumière" and order["context"]["locale"] == "fr-FR"

    answer = buyer.choose(buyer.place_order(), "payplug")
    card = buyer.http.post(answer.headers["Location"], data={"card_number": "4242424242424242", "expiry": "12/30",
                                                             "cvc": "123", "action": "pay"},
                           allow_redirects=False, timeout=10)
    assert card.headers["Location"].endswith("/3ds")  # force_3ds: even the frictionless test card is challenged

    page = buyer.choose(buyer.place_order(), "sips")
    assert page.status_code == 200 and 'id="psp-redirect"' in page.text
    action = re.search(r'<form[^>]+id="psp-redirect"[^>]*action="([^"]+)"|<form[^>]+action="([^"]+)"[^>]*id="psp-redirect"',
                       page.text)
    target = next(g for g in action.groups() if g).replace("&amp;", "&")
    buyer.http.post(target, data=hidden_fields(page.text), timeout=10)
    sent = simulators["sips"].init_requests[-1]["fields"]
    assert sent["templateName"] == "lumiere_tpl" and sent["fraudData.challengeMode3DS"] == "CHALLENGE"
    assert sent["customerLanguage"] == "fr"

    # where the look is set in the provider's own portal, the panel says so
    look = manager.get("/page").text
    assert "PayPlug portal" in look
