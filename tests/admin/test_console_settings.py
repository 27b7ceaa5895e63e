"""Settings pages as a new merchant meets them: a save that changes nothing writes no audit entry,
live selects are not preset without live credentials, 3-D Secure hints say what is sent, a live key
typed as the test key is one clear error."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from sqlalchemy import select

from flask_psp.models import AuditEntry
from flask_psp.simulator import create_simulator

from .test_provider_forms import BASE, CONNECTIONS, creds


class FormReader(HTMLParser):
    """What a browser sends for the page's first POST form to ``action``: checked boxes and radios,
    selected options, text values (password fields are blank, as the page renders them)."""

    def __init__(self, action: str):
        super().__init__()
        self.action, self.inside, self.fields, self.select, self.first_option = action, False, [], None, None
        self.chosen = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self.inside = a.get("action") == self.action and a.get("method") == "post"
        elif not self.inside:
            return
        elif tag == "input" and a.get("name"):
            kind = a.get("type", "text")
            if kind in ("checkbox", "radio"):
                if "checked" in a:
                    self.fields.append((a["name"], a.get("value", "on")))
            elif kind not in ("submit", "button", "file"):
                self.fields.append((a["name"], a.get("value", "")))
        elif tag == "select":
            self.select, self.first_option, self.chosen = a.get("name"), None, False
        elif tag == "option" and self.select:
            if self.first_option is None:
                self.first_option = a.get("value", "")
            if "selected" in a and not self.chosen:
                self.fields.append((self.select, a.get("value", "")))
                self.chosen = True

    def handle_endtag(self, tag):
        if tag == "select" and self.select:
            if not self.chosen:
                self.fields.append((self.select, self.first_option or ""))
            self.select = None
        elif tag == "form":
            self.inside = False


def as_the_browser_sends(admin, path):
    page = admin.get(path)
    reader = FormReader(f"/psp/admin{path}")
    reader.feed(page.text)
    return dict(reader.fields)


def updates(panel, name):
    return panel.query(lambda s: [a.details for a in s.scalars(
        select(AuditEntry).where(AuditEntry.action == "provider.update", AuditEntry.target == name))])


@pytest.mark.parametrize("name", ["sips", "hipay", "adyen", "payplug", "paypal"])
def test_saving_a_provider_page_without_a_change_writes_no_audit_entry(panel, name):
    sim = create_simulator(name)
    server = sim.serve()
    try:
        owner = panel.admin("owner")
        good, _wrongs = CONNECTIONS[name]
        assert owner.post(f"/providers/{name}", {**BASE, "enabled": "on", **creds("test", good(sim), sim.url)}
                          ).status_code == 303
        assert len(updates(panel, name)) == 1
        for _ in range(2):
            again = owner.post(f"/providers/{name}", as_the_browser_sends(owner, f"/providers/{name}"))
            assert again.status_code == 303, again.text
        assert len(updates(panel, name)) == 1, updates(panel, name)
        changed = owner.post(f"/providers/{name}", {**as_the_browser_sends(owner, f"/providers/{name}"), "position": "4"})
        assert changed.status_code == 303
        assert updates(panel, name)[-1]["settings"] == {"position": [0, 4]}
    finally:
        server.stop()
        sim.notifier.close()


def test_live_selects_are_not_preset_without_live_credentials(panel):
    owner = panel.admin("owner")
    page = owner.get("/providers/sips").text
    live = page.split('data-mode="live"')[1]
    select = re.search(r'<select name="cred-live-seal_algorithm">(.*?)</select>', live, re.S).group(1)
    assert re.search(r'<option value="">—</option>', select) and "selected" not in select
    test = re.search(r'<select name="cred-test-seal_algorithm">(.*?)</select>', page, re.S).group(1)
    assert "selected" not in test  # nothing saved in test either
    hipay = owner.get("/providers/hipay").text
    assert "selected" not in re.search(r'<select name="cred-live-hash_algorithm">(.*?)</select>', hipay, re.S).group(1)


def test_three_ds_hints_say_what_is_sent(panel):
    owner = panel.admin("owner")
    paypal = owner.get("/providers/paypal").text
    assert "SCA_" not in paypal and "not sent: PayPal decides" in paypal
    adyen = owner.get("/providers/adyen").text
    hints = re.findall(r'name="three_ds" value="(\w+)".*?<code class="psp-hint">(.*?)</code>', adyen, re.S)
    assert dict(hints)["frictionless"] == "threeDSRequestorChallengeInd: 02 (no challenge requested)"
    assert dict(hints)["when_required"] == "(Adyen decides)"


def test_a_live_key_typed_as_the_test_key_is_one_clear_error(panel):
    owner = panel.admin("owner")
    answer = owner.post("/providers/payplug", {**BASE, "enabled": "on", "cred-test-secret_key": "sk_live_0123456789"})
    assert answer.status_code == 400
    problems = re.findall(r"<li>(.*?)</li>", answer.text.split('role="alert"')[1].split("</ul>")[0], re.S)
    assert len(problems) == 1, problems
    assert "must start with sk_test_ (this one looks like a live key)" in problems[0]
    test_column = answer.text.split('data-mode="test"')[1].split('data-mode="live"')[0]
    assert ">complete<" not in test_column  # the badge tells what is saved: nothing
    assert updates(panel, "payplug") == []


def test_the_audit_log_reads_as_sentences_with_the_order_next_to_the_payment(panel):
    from .conftest import configure_payplug
    from .test_payments import confirm, pay

    owner = configure_payplug(panel, panel.sim.url)
    ref, payment = pay(panel, "MAP-03")
    confirm(owner, payment["id"], "refund", "5")
    owner.post("/providers/payplug", {**as_the_browser_sends(owner, "/providers/payplug"), "position": "2"})
    log = owner.get("/audit").text
    row = re.search(r'<tr data-action="payment.refund">(.*?)</tr>', log, re.S).group(1)
    assert f'href="/psp/admin/payments/{payment["id"]}" data-order="{ref}">{ref}</a>' in row
    assert f"<code>{payment['token']}</code>" in row
    assert "Refund of €5.00; status paid → partially refunded." in row
    update = re.search(r'<tr data-action="provider.update">(.*?)</tr>', log, re.S).group(1)
    assert "position: 0 → 2." in update
    owner.http.headers["Accept-Language"] = "fr"
    french = owner.get("/audit").text
    assert "Remboursement de 5,00\u00a0€; statut payé → partiellement remboursé." in french
