"""Whatever a stranger puts in a link-token URL, or posts to it with a valid CSRF token: a 404
that starts nothing, never a 5xx; only the real token opens the real link."""

from __future__ import annotations

from urllib.parse import quote

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.conftest import CSRF

from .support import link_row, make_link, new_order

PROPERTY = settings(max_examples=80, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def test_no_link_token_but_the_real_one_opens_a_page_or_starts_a_payment(make_shop):
    shop = make_shop()
    ref = new_order(shop.buyer())
    token, _url = make_link(shop, ref)
    client = shop.app.test_client()
    real = client.get(f"/psp/pay/{token}")
    assert real.status_code == 200
    csrf = CSRF.search(real.get_data(as_text=True)).group(1)  # a token valid in this client's session
    opened = link_row(shop, token)["opened_at"]

    @PROPERTY
    @given(guess=st.text(min_size=1, max_size=300).filter(lambda t: t != token and "/" not in t),
           method=st.sampled_from(("GET", "POST")), provider=st.text(max_size=20))
    @example(guess="x\x00y", method="GET", provider="")
    @example(guess=token[:-1], method="POST", provider="payplug")
    @example(guess=token.swapcase(), method="POST", provider="payplug")
    @example(guess=token + "=", method="GET", provider="")
    @example(guess="é" * 200, method="POST", provider="payplug")
    def check(guess, method, provider):
        path = f"/psp/pay/{quote(guess, safe='')}"
        data = {"provider": provider, "csrf_token": csrf} if method == "POST" else None
        answer = client.open(path, method=method, data=data)
        assert answer.status_code == 404, (guess, method, answer.status_code)

    check()
    assert shop.payments(ref) == [] and shop.sim.payments == {}
    assert link_row(shop, token)["opened_at"] == opened
