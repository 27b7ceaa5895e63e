"""PayPal's Transaction Search, fetched for a day, reconciled with the journal (captures with
their fees, refunds, the withdrawal to the bank); a line of another amount is flagged."""

from __future__ import annotations

import json
from datetime import date, datetime, timezone

import requests

from flask_psp.simulator.paypal import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET
from tests.paypal.conftest import approve, start
from tests.settlements.support import assert_reconciled, import_file, movements, problems, refund, run_cli


def paid(shop, sku="MAP-03"):
    buyer = shop.buyer()
    ref, approval_url = start(buyer, sku=sku)
    landed = approve(buyer, approval_url)
    assert landed.status_code == 200
    return ref


def search(sim, day: date) -> bytes:
    """The day's Transaction Search as the merchant's own script would download it."""
    token = requests.post(f"{sim.url}/v1/oauth2/token", data={"grant_type": "client_credentials"},
                          auth=(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET), timeout=10).json()["access_token"]
    answer = requests.get(f"{sim.url}/v1/reporting/transactions", headers={"Authorization": f"Bearer {token}"},
                          params={"start_date": f"{day}T00:00:00Z", "end_date": f"{day}T23:59:59Z"}, timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.content


def test_the_days_transactions_fetched_from_paypal_reconcile_to_zero_differences(paypal_shop, sim):
    shop = paypal_shop()
    ref = paid(shop)
    refund(shop, ref, 1000)
    refund(shop, ref, 990)
    assert sim.notifier.wait_idle(timeout=10)
    withdrawal = sim.withdraw("EUR")
    today = datetime.now(timezone.utc).date()

    code, output = run_cli(shop, "settlements", "import", "paypal", "--fetch", "--date", today.isoformat())
    assert code == 0 and "4 new line(s) (3 matched, 1 booked, 0 difference, 0 unmatched)" in output, output
    found = assert_reconciled(shop)
    assert sorted(line["kind"] for line in found) == ["capture", "payout", "refund", "refund"]
    (fee,) = movements(shop, "fee")
    assert fee["amount"] == sim.fee_of(3990) and fee["payment_id"] == shop.payments(ref)[0]["id"]
    (payout,) = movements(shop, "payout")
    assert payout["amount"] == withdrawal["cents"] == 3990 - sim.fee_of(3990) - 1990

    # the same day fetched again: nothing new, nothing twice
    code, output = run_cli(shop, "settlements", "import", "paypal", "--fetch", "--date", today.isoformat())
    assert code == 0 and "imported already" in output, output
    assert len(movements(shop, "fee", "payout")) == 2



def test_a_transaction_of_another_amount_than_the_shop_recorded_is_flagged(paypal_shop, sim, tmp_path):
    shop = paypal_shop()
    ref = paid(shop)
    document = json.loads(search(sim, datetime.now(timezone.utc).date()))
    (entry,) = document["transaction_details"]
    entry["transaction_info"]["transaction_amount"]["value"] = "29.90"
    code, output = import_file(shop, "paypal", json.dumps(document).encode(), tmp_path, "search.json")
    assert code == 1 and "1 difference" in output, output
    (line,) = problems(shop)
    assert line["kind"] == "capture" and line["gross"] == 2990 and line["payment_id"] == shop.payments(ref)[0]["id"]
    assert "settlement report line" in shop.payments(ref)[0]["flag"]
