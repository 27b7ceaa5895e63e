from django.db import models
from payments.models import BasePayment


class Payment(BasePayment):
    class Meta:
        # django-payments looks a webhook's payment up by token, which BasePayment leaves
        # unindexed: a shop would add the index, and the bench does too
        indexes = [models.Index(fields=["token"])]

    def get_success_url(self) -> str:
        return f"http://127.0.0.1/orders/{self.token}/paid"

    def get_failure_url(self) -> str:
        return f"http://127.0.0.1/orders/{self.token}/failed"


class SignalFire(models.Model):
    """One row per ``status_changed`` signal: the side effect a shop hangs on it (mark the order
    paid, send the confirmation), counted."""

    payment = models.ForeignKey(Payment, on_delete=models.CASCADE)
    status = models.CharField(max_length=10)
    fired_at = models.DateTimeField(auto_now_add=True)


def on_status_changed(sender, instance, **kwargs):
    SignalFire.objects.create(payment=instance, status=instance.status)
