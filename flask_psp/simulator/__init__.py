"""Wire-faithful stand-ins for the payment service providers, served on loopback.

One module a concern:

* :mod:`.notifier` — :class:`Notifier` delivers notifications the way a PSP does: asynchronously, from a
  background thread, retrying while the shop answers non-2xx or cannot be reached.
* :mod:`.server` — :class:`SimulatorServer` serves a WSGI app on a loopback port in a daemon thread.
* :mod:`.base` — :class:`ProviderSimulator`, the base of every provider's simulator (accounts, a notifier,
  the request log, errors, reset/describe, a Flask app with the provider's blueprint).
* :mod:`.page` — the look of every hosted page.
* :mod:`.adyen`, :mod:`.hipay`, :mod:`.paypal`, :mod:`.payplug`, :mod:`.sips` — one PSP each: its
  simulator class (state, rules, the PSP's own later news) and its routes (a blueprint).

:func:`create_simulator` builds a simulator by provider name from :data:`SIMULATORS`::

    sim = create_simulator("payplug")
    sim.serve()            # sim.url: the endpoint override to configure

The simulators are written from the PSP's side and share no code with the provider clients in
``flask_psp.providers``: nothing here imports from ``flask_psp`` outside this package.
"""

from __future__ import annotations

import importlib
from typing import Any

from .base import ProviderSimulator
from .notifier import DEFAULT_RETRY_DELAYS, Delivery, Notifier
from .server import SimulatorServer

__all__ = [
    "DEFAULT_RETRY_DELAYS",
    "Delivery",
    "Notifier",
    "ProviderSimulator",
    "SIMULATORS",
    "SimulatorServer",
    "create_simulator",
]


# name -> class, or "module:attribute" imported on first use (keeps this package free of import cycles).
SIMULATORS: dict[str, Any] = {
    "adyen": "flask_psp.simulator.adyen:AdyenSimulator",
    "hipay": "flask_psp.simulator.hipay:HiPaySimulator",
    "paypal": "flask_psp.simulator.paypal:PayPalSimulator",
    "payplug": "flask_psp.simulator.payplug:PayPlugSimulator",
    "sips": "flask_psp.simulator.sips:SipsSimulator",
}


def _simulator_class(name: str):
    try:
        target = SIMULATORS[name]
    except KeyError:
        raise KeyError(f"no simulator for provider {name!r}; known: {', '.join(sorted(SIMULATORS))}") from None
    if isinstance(target, str):
        module_name, _, attribute = target.partition(":")
        target = getattr(importlib.import_module(module_name), attribute)
        SIMULATORS[name] = target
    return target


def create_simulator(name: str, **options) -> ProviderSimulator:
    """Build the simulator registered under ``name`` (e.g. ``"payplug"``) with ``options``."""
    return _simulator_class(name)(**options)
