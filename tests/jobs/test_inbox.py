"""The inbox as the source of truth for background processing: proven news is kept on its row, a batch
becomes one queued row per item, a row given to two workers is applied once, and the commands and
settings around it say clearly what they do."""

from __future__ import annotations

from datetime import timedelta

import pytest

from flask_psp.extension import current_state
from flask_psp.config import ConfigurationError
from flask_psp.events import Event, EventKind, VerifiedMessage
from flask_psp.ledger import decode_message, encode_message
from tests.jobs.support import later, run_at_once


def news(payment, key, *events):
    return VerifiedMessage(provider="payplug", dedupe_key=key, events=list(events), mode="test", event_type="test",
                           psp_reference=payment["psp_reference"], payment_token=payment["token"],
                           raw={"id": payment["psp_reference"]})


def paid(amount=2500):
    return Event(EventKind.CAPTURED, amount=amount, currency="EUR", captured_total=amount)


def test_a_verified_message_survives_its_trip_through_json():
    message = VerifiedMessage(provider="adyen", dedupe_key="k", mode="live", event_type="CAPTURE:true",
                              psp_reference="psp1", payment_token="tok", merchant_reference="m",
                              events=[paid(1999), Event(EventKind.REFUNDED, refund_delta=500, reason="asked")],
                              raw={"big": "body"})
    stored = encode_message(message)
    assert "raw" not in stored and stored["events"][0] == {"kind": "captured", "amount": 1999, "currency": "EUR",
                                                           "captured_total": 1999}
    back = decode_message(stored)
    assert back == VerifiedMessage(**{**message.__dict__, "raw": None})


def test_a_batch_is_queued_as_one_row_per_item_and_each_applies(jobs_shop):
    first, second = jobs_shop.start("I-1"), jobs_shop.start("I-2")
    with jobs_shop.ctx():
        service = current_state().service()
        parent = service.ledger.record("payplug", b"[two items]")
        ids = service.ledger.queue_all(parent, [news(first, "b-1", paid()), news(second, "b-2", paid())],
                                       later(minutes=5))
        parent_id = parent.id
    children = jobs_shop.events(parent_id=parent_id)
    assert [c["id"] for c in children] == ids and {c["outcome"] for c in children} == {"queued"}
    assert jobs_shop.events(id=parent_id)[0]["outcome"] == "applied"  # the batch itself was taken apart
    with jobs_shop.ctx():
        outcomes = current_state().service().apply_queued(ids)
    assert [o.outcome for o in outcomes] == ["applied", "applied"]
    assert jobs_shop.marked("I-1") == 1 and jobs_shop.marked("I-2") == 1
    with jobs_shop.ctx():  # a task delivered twice finds them done
        assert current_state().service().apply_queued(ids) == []


def test_a_row_given_to_two_workers_at_once_is_applied_once(jobs_shop):
    payment = jobs_shop.start("I-3")
    with jobs_shop.ctx():
        service = current_state().service()
        row = service.ledger.record("payplug", b"{}")
        (row_id,) = service.ledger.queue_all(row, [news(payment, "once", paid())], later(minutes=5))

    def worker(_):
        with jobs_shop.ctx():
            return [o.outcome for o in current_state().service().apply_queued([row_id])]

    results = run_at_once(4, worker)
    assert sorted(results) == [[], [], [], ["applied"]]
    assert jobs_shop.marked("I-3") == 1 and jobs_shop.heard("I-3") == 1


def test_run_jobs_runs_every_job_once_and_reports(jobs_shop):
    result = jobs_shop.app.test_cli_runner().invoke(args=["psp", "run-jobs"])
    assert result.exit_code == 0, result.output
    assert [line.split(":")[0] for line in result.output.splitlines()] == ["sweep", "retry", "capture", "reconcile",
                                                                          "expire", "settlements", "links", "mail"]
    only = jobs_shop.app.test_cli_runner().invoke(args=["psp", "run-jobs", "--job", "expire", "--job", "capture"])
    assert [line.split(":")[0] for line in only.output.splitlines()] == ["expire", "capture"]
    wrong = jobs_shop.app.test_cli_runner().invoke(args=["psp", "run-jobs", "--job", "reboot"])
    assert wrong.exit_code != 0 and "reboot" in wrong.output


@pytest.mark.parametrize("key, value, message", [
    ("PSP_EXPIRE_AFTER", "1 day", "PSP_EXPIRE_AFTER must be a number of seconds or a timedelta"),
    ("PSP_JOBS_HOLD", 0, "PSP_JOBS_HOLD must be positive"),
    ("PSP_JOBS_BATCH", 2.5, "PSP_JOBS_BATCH must be a whole number"),
])
def test_bad_job_settings_are_refused_clearly(make_jobs_shop, key, value, message):
    shop = make_jobs_shop(**{key: value})
    result = shop.app.test_cli_runner().invoke(args=["psp", "run-jobs"])
    assert result.exit_code != 0 and message in str(result.exception)


def test_durations_may_be_timedeltas(make_jobs_shop):
    shop = make_jobs_shop(PSP_EXPIRE_AFTER=timedelta(hours=2))
    payment = shop.start("I-4")
    assert shop.run("expire", now=later(hours=1))["expire"].claimed == 0
    assert shop.run("expire", now=later(hours=3))["expire"].done == 1
    assert shop.payment(payment["token"])["status"] == "expired"


def test_an_unknown_task_queue_is_refused(make_jobs_shop):
    shop = make_jobs_shop(PSP_TASK_QUEUE="rq")
    with shop.app.test_request_context(), pytest.raises(ConfigurationError, match="PSP_TASK_QUEUE must be None or 'celery'"):
        current_state().notification_queue()
