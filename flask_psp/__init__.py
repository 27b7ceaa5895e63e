"""flask-psp: payment service providers for Flask shops.

::

    from flask_psp import PSP, OrderInfo
    psp = PSP(app, db=db, orders=MyOrders())

See :class:`PSP` and the documentation under docs/.
"""

from .config import ConfigurationError
from .extension import PSP
from .links import LinkError
from .models import PaymentLink
from .orders import DELIVERY_TYPES, Address, OrderInfo
from .providers.base import ProviderError
from .states import PaymentStatus

__all__ = ["PSP", "OrderInfo", "Address", "DELIVERY_TYPES", "PaymentStatus", "ConfigurationError", "ProviderError",
           "PaymentLink", "LinkError", "signals"]
__version__ = "0.1.0"

from . import signals  # noqa: E402
