"""Signals sent after the transaction that moved a payment has committed.

Each is sent with the payment as sender and as the ``payment`` keyword::

    from flask_psp.signals import order_paid

    @order_paid.connect
    def ship(sender, payment, **extra):
        ship_order(payment.order_ref)

``order_paid`` fires once per order, when its payment is paid (or authorized, under manual capture).

Four more tell what the merchant should look at (the admin panel mails them when asked to)::

    chargeback              the PSP reported a chargeback (sent with the payment, as above)
    notification_problem    a notification refused (not authentic), malformed or about no known payment
    amount_mismatch         proven news whose amount, currency or mode differ from the payment's, or that
                            authorizes or captures less than it without the merchant asking (not applied)
    test_payment_on_live    news that would have paid an order through a test-mode payment while its
                            provider is live: applied to the payment (flagged), the order is not paid

The last three are sent with the provider's name as sender and the inbox entry as the ``entry`` keyword,
a dict of plain values: ``event_id``, ``provider``, ``mode``, ``amount``, ``currency``, ``status``
(the inbox outcome), ``detail`` and ``payment_id``.
"""

from blinker import Namespace

_signals = Namespace()

#: a payment is authorized: the money is reserved (manual or delayed capture)
payment_authorized = _signals.signal("psp-payment-authorized")
#: a payment is paid (captured)
payment_paid = _signals.signal("psp-payment-paid")
#: a payment failed (refused, 3-D Secure failed…)
payment_failed = _signals.signal("psp-payment-failed")
#: a payment was refunded, in part or in full
payment_refunded = _signals.signal("psp-payment-refunded")
#: an order is paid, once per order, after ``mark_paid`` ran in the same transaction
order_paid = _signals.signal("psp-order-paid")

BY_NAME = {
    "payment_authorized": payment_authorized,
    "payment_paid": payment_paid,
    "payment_failed": payment_failed,
    "payment_refunded": payment_refunded,
    "order_paid": order_paid,
}


#: the PSP reported a chargeback (sent with the payment)
chargeback = _signals.signal("psp-chargeback")
#: a notification refused, malformed or about no known payment (sent with ``entry=``)
notification_problem = _signals.signal("psp-notification-problem")
#: proven news whose amount, currency or mode differ from the payment's (sent with ``entry=``)
amount_mismatch = _signals.signal("psp-amount-mismatch")
#: news that would have paid an order through a test-mode payment while its provider is live (``entry=``)
test_payment_on_live = _signals.signal("psp-test-payment-on-live")

#: sent with an inbox entry rather than a payment
ABOUT_INBOX = {"notification_problem": notification_problem, "amount_mismatch": amount_mismatch,
               "test_payment_on_live": test_payment_on_live}
NOTICES = {"chargeback": chargeback, **ABOUT_INBOX}


#: payment links (:mod:`flask_psp.links`), sent with the link as sender and as ``link=``;
#: ``payment_link_paid`` also with the payment that paid it as ``payment=``, after ``order_paid``
payment_link_created = _signals.signal("psp-payment-link-created")
payment_link_paid = _signals.signal("psp-payment-link-paid")


def send(name: str, subject) -> None:
    """Send the signal ``name`` about ``subject``: a payment, or an inbox entry (a dict)."""
    if name in ABOUT_INBOX:
        ABOUT_INBOX[name].send(subject["provider"], entry=subject)
    else:
        (NOTICES.get(name) or BY_NAME[name]).send(subject, payment=subject)
