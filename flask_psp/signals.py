"""Signals sent after the transaction that moved a payment has committed.

Each is sent with the payment as sender and as the ``payment`` keyword::

    from flask_psp.signals import order_paid

    @order_paid.connect
    def ship(sender, payment, **extra):
        ship_order(payment.order_ref)

``order_paid`` fires once per order, when its payment is paid (or authorized, under manual capture).
"""

from blinker import Namespace

_signals = Namespace()

payment_authorized = _signals.signal("psp-payment-authorized")
payment_paid = _signals.signal("psp-payment-paid")
payment_failed = _signals.signal("psp-payment-failed")
payment_refunded = _signals.signal("psp-payment-refunded")
order_paid = _signals.signal("psp-order-paid")

BY_NAME = {
    "payment_authorized": payment_authorized,
    "payment_paid": payment_paid,
    "payment_failed": payment_failed,
    "payment_refunded": payment_refunded,
    "order_paid": order_paid,
}


def send(name: str, payment) -> None:
    BY_NAME[name].send(payment, payment=payment)
