"""``python -m bench.peer.prepare COUNT``: the peer's tables (``migrate --run-syncdb``; its schema
must exist) and COUNT payments waiting for Stripe, as its checkout leaves them (a Checkout Session
made, its id kept). Prints the payments' tokens as JSON, one list."""

import json
import os
import sys
import uuid
from decimal import Decimal

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.peer.settings")


def main() -> None:
    import django

    django.setup()
    from django.core.management import call_command
    from payments import PaymentStatus

    from .models import Payment

    call_command("migrate", run_syncdb=True, verbosity=0)
    count = int(sys.argv[1])
    payments = [Payment(variant="stripe", status=PaymentStatus.WAITING, currency="EUR", total=Decimal("14.50"),
                        description="bench order", billing_email="buyer@example.com", token=str(uuid.uuid4()),
                        transaction_id=f"cs_test_bench{i:07d}") for i in range(count)]
    Payment.objects.bulk_create(payments, batch_size=1000)
    json.dump([p.token for p in payments], sys.stdout)


if __name__ == "__main__":
    main()
