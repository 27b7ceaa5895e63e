import itertools

import pytest

from flask_psp.events import InboxOutcome
from flask_psp.states import Move, PaymentStatus as S, allowed_targets, can_move, classify

FORWARD = [
    (S.CREATED, S.PENDING), (S.PENDING, S.AUTHORIZED), (S.AUTHORIZED, S.PAID),
    (S.PAID, S.PARTIALLY_REFUNDED), (S.PARTIALLY_REFUNDED, S.REFUNDED), (S.PAID, S.REFUNDED),
    (S.PENDING, S.PAID), (S.CREATED, S.PAID), (S.PENDING, S.FAILED), (S.PENDING, S.CANCELLED),
    (S.PENDING, S.EXPIRED), (S.AUTHORIZED, S.CANCELLED), (S.AUTHORIZED, S.EXPIRED),
]


@pytest.mark.parametrize("current,target", FORWARD)
def test_the_documented_path_is_allowed(current, target):
    assert can_move(current, target)
    assert classify(current, target) is Move.APPLY


@pytest.mark.parametrize("current", [S.FAILED, S.CANCELLED, S.EXPIRED])
@pytest.mark.parametrize("target", [S.AUTHORIZED, S.PAID])
def test_money_taken_wins_over_an_earlier_failure_and_is_flagged(current, target):
    assert classify(current, target) is Move.LATE_SUCCESS


@pytest.mark.parametrize("current", [S.PAID, S.PARTIALLY_REFUNDED, S.REFUNDED])
@pytest.mark.parametrize("target", [S.CREATED, S.PENDING, S.AUTHORIZED, S.FAILED, S.CANCELLED, S.EXPIRED])
def test_nothing_moves_back_from_paid_except_refunds(current, target):
    assert not can_move(current, target)
    assert classify(current, target) is Move.STALE


def test_refunded_is_final():
    assert allowed_targets(S.REFUNDED) == frozenset()


@pytest.mark.parametrize("status", [s for s in S if s is not S.PARTIALLY_REFUNDED])
def test_the_same_status_twice_changes_nothing(status):
    assert classify(status, status) is Move.SAME


def test_another_partial_refund_is_a_move():
    assert classify(S.PARTIALLY_REFUNDED, S.PARTIALLY_REFUNDED) is Move.APPLY


def test_every_pair_is_classified_consistently_with_can_move():
    for current, target in itertools.product(S, S):
        move = classify(current, target)
        if move in (Move.APPLY, Move.LATE_SUCCESS):
            assert can_move(current, target), (current, target)
        elif move is Move.STALE:
            assert not can_move(current, target), (current, target)


def test_statuses_are_strings_for_json_and_templates():
    assert S("paid") is S.PAID and str(S.PAID) == "paid"


def test_every_status_and_inbox_outcome_the_core_stores_has_a_word_in_the_panel():
    from flask_psp.views.admin.labels import LABELS

    assert set(LABELS["status"]) == {status.value for status in S}
    assert set(LABELS["outcome"]) == {outcome.value for outcome in InboxOutcome}
    assert InboxOutcome.MISMATCH == "mismatch" and f"{InboxOutcome.MISMATCH}" == str(InboxOutcome.MISMATCH) == "mismatch"
