"""What every provider's simulator does the same way: :class:`ProviderSimulator`.

A simulator declares what differs and writes its routes as a blueprint of small functions::

    blueprint = Blueprint("payplug", __name__)

    class PayPlugSimulator(ProviderSimulator):
        name, brand = "payplug", "PayPlug"
        blueprint = blueprint                     # registered on the simulator's own Flask app
        default_accounts = DEFAULT_ACCOUNTS       # when the caller gives none
        api_paths = ("/v1/",)                     # the calls the request log keeps
        test_cards = TEST_CARDS                   # shown by describe() and on the card form
        state = {"payments": dict}                # what reset() makes new (and __init__ creates)

    @blueprint.get("/v1/payments/<payment_id>")
    def get_payment(payment_id):
        sim = current_simulator()                 # the simulator whose app serves this request
        ...

The base gives it: a Flask app that keeps JSON keys in the order written and answers an :class:`ApiError`
with :meth:`ProviderSimulator.error_answer`; the request log :attr:`ProviderSimulator.requests`;
:meth:`~ProviderSimulator.reset`, :meth:`~ProviderSimulator.describe`, :meth:`~ProviderSimulator.page`
(the shared hosted-page look, :mod:`.page`) and serving on loopback; :class:`HostedPages` routes the
hosted pages about one kind of resource.
"""

from __future__ import annotations

import functools
import threading
from typing import Any, Callable

import flask

from .notifier import DEFAULT_RETRY_DELAYS, Notifier
from .page import render_page
from .server import SimulatorServer

__all__ = ["ApiError", "HostedPages", "ProviderSimulator", "current_simulator"]

_EXTENSION = "psp_simulator"


class ApiError(Exception):
    """An API call the PSP refuses. Each simulator's subclass writes the answer as its PSP does."""

    status: int = 400

    def body(self) -> dict:
        """The JSON body of the answer (sent with :attr:`status`)."""
        raise NotImplementedError


def current_simulator() -> Any:
    """The simulator whose app serves the current request (for the views of a simulator's blueprint)."""
    return flask.current_app.extensions[_EXTENSION]


class HostedPages:
    """The routes of the hosted pages about one kind of resource; each view is called as
    ``view(sim, resource)``::

        payment_pages = HostedPages(blueprint, "payments", missing=lambda sim: sim.page("Unknown payment", status=404))

        @payment_pages.get("/pay/<payment_id>")
        def hosted_page(sim, payment): ...

    ``find`` names the simulator's dict of such resources, or is ``find(sim, key) -> resource | None``; the
    key is the URL's one value, or the query-string parameter ``query``. An unknown resource gets the page
    ``missing(sim)``. With ``status``, the pages are about a resource whose ``"status"`` is that: another
    gets the page ``conflict(sim, resource)``.
    """

    def __init__(self, blueprint: flask.Blueprint, find: str | Callable, *, missing: Callable,
                 status: str | None = None, conflict: Callable | None = None, query: str | None = None):
        self.blueprint, self.find, self.missing, self.query = blueprint, find, missing, query
        self.status, self.conflict = status, conflict

    def get(self, rule: str):
        return self._route(rule, "GET")

    def post(self, rule: str):
        return self._route(rule, "POST")

    def _route(self, rule: str, method: str):
        def register(view):
            self.blueprint.add_url_rule(rule, view.__name__, functools.wraps(view)(self._with_resource(view)),
                                        methods=[method])
            return view

        return register

    def _with_resource(self, view):
        def with_resource(**values):
            sim = current_simulator()
            key = flask.request.args.get(self.query, "") if self.query else next(iter(values.values()))
            resource = self._lookup(sim, key)
            if resource is None:
                return self.missing(sim)
            if self.status is not None and resource["status"] != self.status:
                return self.conflict(sim, resource)
            return view(sim, resource)

        return with_resource

    def _lookup(self, sim, key):
        if callable(self.find):
            return self.find(sim, key)
        with sim.lock:
            return getattr(sim, self.find).get(key)


class ProviderSimulator:
    """Base: holds accounts, a :class:`Notifier`, the request log and a Flask app (``self.app``)."""

    name: str = ""
    #: how the PSP calls itself on its pages
    brand: str = ""
    #: the PSP's routes (API and hosted pages)
    blueprint: flask.Blueprint | None = None
    #: the accounts when the caller gives none
    default_accounts: dict = {}
    #: request paths (prefixes) whose calls :attr:`requests` records
    api_paths: tuple[str, ...] = ()
    #: what the top of every hosted page says after "<brand> simulator — "
    page_note: str = "no real card is charged."
    #: ``(card number, what it does)``, for :meth:`describe` and the card form
    test_cards: tuple[tuple[str, str], ...] = ()
    #: attribute -> factory: what :meth:`reset` sets back to new (and ``__init__`` creates)
    state: dict[str, Callable[[], Any]] = {}
    #: False: JSON answers keep their keys in the order the simulator writes them
    sort_json_keys: bool = False
    #: what the simulated PSP keeps of each capture it settles: (basis points, fixed amount in minor units)
    settlement_fee: tuple[int, int] = (140, 25)

    def __init__(self, accounts: dict | None = None, notifier: Notifier | None = None,
                 retry_delays=DEFAULT_RETRY_DELAYS):
        self.accounts: dict = dict(self.default_accounts if accounts is None else accounts)
        for key, account in self.accounts.items():
            self.check_account(key, account)
        self._owns_notifier = notifier is None
        self.notifier: Notifier = notifier if notifier is not None else Notifier(retry_delays=retry_delays)
        self.url: str | None = None
        self.server: SimulatorServer | None = None
        self.lock = threading.RLock()
        #: one entry per API call: ``{"method", "path", **call_details(), "status"}``
        self.requests: list[dict] = []
        self.reset()
        self.app: flask.Flask = self._make_app()

    # ------------------------------------------------------------------ for subclasses
    def check_account(self, key: str, account: Any) -> None:
        """Raise ValueError for an account the PSP would not have issued."""

    def call_details(self) -> dict:
        """What the request log keeps of the current API call besides its method, path and status."""
        return {}

    def error_answer(self, error: ApiError):
        """The answer to a refused API call."""
        return flask.jsonify(error.body()), error.status

    def account_lines(self) -> list[str]:
        """Human lines about the accounts (keys, secrets) for :meth:`describe`."""
        return []

    def fee_of(self, amount: int) -> int:
        """The PSP's fee for settling a capture of ``amount`` (minor units), rounded down."""
        rate, fixed = self.settlement_fee
        return amount * rate // 10_000 + fixed

    # ------------------------------------------------------------------ public face
    def describe(self) -> list[str]:
        """Human lines for the command line: the accounts, then the test cards."""
        return self.account_lines() + [f"card {number}: {meaning}" for number, meaning in self.test_cards]

    def reset(self) -> None:
        """Forget every resource and the request log."""
        with self.lock:
            self.requests = []
            for attribute, make in self.state.items():
                setattr(self, attribute, make())

    def page(self, title: str, status: int = 200, **context) -> flask.Response:
        """A hosted page in the shared look (:func:`.page.render_page` says what ``context`` shows)."""
        html = render_page(title, brand=self.brand, **{"note": self.page_note, "cards": self.test_cards, **context})
        return flask.Response(html, status=status, mimetype="text/html")

    def serve(self, host: str = "127.0.0.1", port: int = 0) -> SimulatorServer:
        """Start serving ``self.app``; returns the started server and sets ``self.url``."""
        server = SimulatorServer(self.app, host, port).start()
        self.server = server
        self.url = server.url
        return server

    def base_url(self) -> str:
        """The simulator's own URL: the served one, else (inside a request) the request's root."""
        if self.url:
            return self.url
        if flask.has_request_context():
            return flask.request.host_url.rstrip("/")
        return ""

    def close(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None
        if self._owns_notifier:
            self.notifier.close()

    # ------------------------------------------------------------------ machinery
    def _make_app(self) -> flask.Flask:
        app = flask.Flask(f"flask_psp.simulator.{self.name or 'base'}")
        app.json.sort_keys = self.sort_json_keys
        app.extensions[_EXTENSION] = self
        app.before_request(self._log_call)
        app.after_request(self._log_answer)
        app.register_error_handler(ApiError, self.error_answer)
        if self.blueprint is not None:
            app.register_blueprint(self.blueprint)
        return app

    def _log_call(self) -> None:
        if flask.request.path.startswith(self.api_paths):
            flask.g.api_call = {"method": flask.request.method, "path": flask.request.path,
                                **self.call_details(), "status": None}
            with self.lock:
                self.requests.append(flask.g.api_call)

    def _log_answer(self, response: flask.Response) -> flask.Response:
        entry = flask.g.get("api_call")
        if entry is not None:
            entry["status"] = response.status_code
        return response
