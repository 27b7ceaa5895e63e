"""``flask psp …`` commands."""

from __future__ import annotations

import sys

import click
import requests
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import inspect

from .extension import current_state
from .jobs import JOB_NAMES
from .providers.base import ProviderError

psp_cli = AppGroup("psp", help="flask-psp: database, users, keys, simulators.")
db_cli = AppGroup("db", help="The plugin's own schema migrations (version table psp_alembic_version).")
psp_cli.add_command(db_cli)


@db_cli.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision):
    """Create or migrate the plugin's tables."""
    from . import migrations

    engine = current_state().db.engine
    if migrations.current(engine) is None and inspect(engine).has_table("psp_payment"):
        raise click.ClickException(
            "the psp_ tables exist but carry no migration version (made by db.create_all()?); "
            "if they match this version of flask-psp, run `flask psp db stamp head` once"
        )
    migrations.upgrade(engine, revision)
    click.echo(f"flask-psp schema at {migrations.current(engine)}")


@db_cli.command("downgrade")
@click.argument("revision")
def db_downgrade(revision):
    from . import migrations

    migrations.downgrade(current_state().db.engine, revision)
    click.echo(f"flask-psp schema at {migrations.current(current_state().db.engine)}")


@db_cli.command("stamp")
@click.argument("revision", default="head")
def db_stamp(revision):
    from . import migrations

    migrations.stamp(current_state().db.engine, revision)


@db_cli.command("current")
def db_current():
    from . import migrations

    click.echo(migrations.current(current_state().db.engine) or "none")


@psp_cli.command("create-user")
@click.argument("email")
@click.option("--role", type=click.Choice(["owner", "manager", "accountant", "viewer"]), default="owner")
@click.password_option()
def create_user(email, role, password):
    """Create a built-in admin panel account."""
    from .users import create_user as create

    try:
        create(current_state().db.session, email, password, role)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"created {role} {email}")


@psp_cli.command("generate-key")
def generate_key():
    """Print a new key for PSP_ENCRYPTION_KEY."""
    from .secret_box import generate_key as make

    click.echo(make())


@psp_cli.command("rotate-key")
def rotate_key():
    """Re-encrypt stored provider credentials with the first key of PSP_ENCRYPTION_KEY.

    To rotate: generate a key, put it first in PSP_ENCRYPTION_KEY with the old key(s) after it,
    restart, run this, then drop the old keys."""
    from .admin.providers import rotate_credentials
    from .secret_box import SecretsError

    state = current_state()
    try:
        count = rotate_credentials(state.db.session, state.box)
    except SecretsError as exc:
        raise click.ClickException(str(exc)) from None
    keys = current_app.config.get("PSP_ENCRYPTION_KEY")
    click.echo(f"re-encrypted {count} provider credential set(s) with the first key of PSP_ENCRYPTION_KEY")
    if isinstance(keys, str) or len(list(keys or [])) < 2:
        click.echo("PSP_ENCRYPTION_KEY holds one key: put a new key first and the old one after it to rotate")
    else:
        click.echo("the other keys are no longer needed for these credentials: remove them from PSP_ENCRYPTION_KEY")


@psp_cli.command("run-jobs")
@click.option("--job", "names", multiple=True, type=click.Choice(list(JOB_NAMES)),
              help="run only this job (repeatable); default: all of them")
def run_jobs(names):
    """Run the scheduled jobs once, for cron: re-queue or apply stuck notifications (sweep), retry
    failed post-processing (retry), take delayed captures that fell due (capture), check long
    pending or authorized payments with the PSP (reconcile), expire abandoned ones (expire), import
    the settlement reports that are due (settlements), remind buyers of payment links about to expire
    (links), send the e-mails that are due (mail). Safe to run from several machines at once."""
    runner = current_state().jobs()
    failed = []
    for name in names or JOB_NAMES:
        try:
            (report,) = runner.run([name])
        except Exception as exc:  # noqa: BLE001 - one job's trouble must not keep the others from running
            runner.session.rollback()
            current_app.logger.exception("flask-psp job %s failed", name)
            click.echo(f"{name}: failed: {type(exc).__name__}: {exc}", err=True)
            failed.append(name)
            continue
        click.echo(str(report))
    if failed:
        sys.exit(1)


@psp_cli.group("payment-link")
def payment_link():
    """Payment links: an order paid later, from a URL sent to the buyer."""


_CLI_ACTOR = "flask psp payment-link"


@payment_link.command("create")
@click.argument("order_ref")
@click.option("--email", help="send it to this address (default: the order's)")
@click.option("--expires-in-days", type=click.IntRange(1, 366), default=30, show_default=True)
@click.option("--locale", help="the buyer's language (default: the order's)")
@click.option("--note", help="a line for the buyer, shown on the page and in the mail")
@click.option("--send", is_flag=True, help="mail it now (needs MAIL_SERVER)")
def payment_link_create(order_ref, email, expires_in_days, locale, note, send):
    """Create a payment link for ORDER_REF; its URL is the last line printed. Put ``--`` before a
    reference that starts with ``-``."""
    from datetime import timedelta

    from .links import LinkError

    links = current_state().links()
    try:
        link = links.create(order_ref, email=email, expires_in=timedelta(days=expires_in_days), locale=locale,
                            note=note, actor=_CLI_ACTOR)
        url = link.url
    except LinkError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"payment link for order {link.order_ref}, valid until {link.expires_at:%Y-%m-%d %H:%M} UTC")
    if send:
        try:
            links.send(link, actor=_CLI_ACTOR)
        except LinkError as exc:
            click.echo(f"not sent: {exc}", err=True)
            click.echo(url)
            sys.exit(1)
        click.echo(f"sent to {link.email or current_state().orders.get(link.order_ref).email}")
    click.echo(url)


@payment_link.command("cancel")
@click.argument("token")
def payment_link_cancel(token):
    """Cancel the payment link whose URL ends with TOKEN."""
    from .links import LinkError

    links = current_state().links()
    token = token.rstrip("/").rsplit("/", 1)[-1]
    link = links.by_token(token) if 0 < len(token) <= 64 and token.isprintable() else None
    if link is None:
        raise click.ClickException(f"no payment link with token {token}")
    try:
        links.cancel(link, actor=_CLI_ACTOR)
    except LinkError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"cancelled the payment link of order {link.order_ref}")


@psp_cli.group("simulate")
def simulate():
    """Drive the PSP simulators by hand."""


@simulate.command("notify")
@click.argument("provider")
@click.argument("payment_token")
@click.option("--url", help="notification URL (default: PSP_PUBLIC_URL + prefix + /notify/<provider>)")
def simulate_notify(provider, payment_token, url):
    """Send PAYMENT_TOKEN's current state as PROVIDER would notify it (PayPlug: the payment object
    read back from the configured endpoint). Put ``--`` before a token that starts with ``-``."""
    service = current_state().service()
    payment = service.by_token(payment_token)
    if payment is None:
        raise click.ClickException(f"no payment with token {payment_token}")
    if provider != "payplug" or payment.provider != "payplug":
        raise click.ClickException("only PayPlug notifications can be simulated by hand for now")
    client = service.provider(payment.provider, payment.mode)
    if client is None or not client.config.endpoint:
        raise click.ClickException("PayPlug has no simulator endpoint configured for this payment's mode")
    try:
        body = client.notification_body(payment)
    except ProviderError as exc:
        raise click.ClickException(f"the simulator answered {exc.status}" if exc.status else exc.message) from None
    base = (current_app.config.get("PSP_PUBLIC_URL") or "http://127.0.0.1:5000").rstrip("/")
    url = url or f"{base}{current_app.config['PSP_URL_PREFIX']}/notify/{provider}"
    answer = requests.post(url, data=body, headers={"Content-Type": "application/json"}, timeout=10)
    click.echo(f"POST {url} -> {answer.status_code} {answer.text[:200]}")
    sys.exit(0 if answer.ok else 1)


@psp_cli.group("settlements")
def settlements_cli():
    """Settlement reconciliation: import each PSP's settlement report and match it to the shop's movements."""


@settlements_cli.command("import")
@click.argument("provider", type=click.Choice(["adyen", "hipay", "paypal", "payplug", "sips"]))
@click.option("--file", "path", type=click.Path(exists=True, dir_okay=False), help="the report file, as the PSP gave it")
@click.option("--fetch", is_flag=True, help="ask the PSP for its report (PayPal, PayPlug: of --date; Adyen: those it announced)")
@click.option("--date", "day", type=click.DateTime(formats=["%Y-%m-%d"]), help="the day to fetch (YYYY-MM-DD; default: yesterday)")
@click.option("--mode", type=click.Choice(["test", "live"]), help="the report's mode (default: the provider's mode in force)")
def settlements_import(provider, path, fetch, day, mode):
    """Import PROVIDER's settlement report and reconcile it: fees and payouts become movements,
    every other line is matched to its capture, refund or chargeback. Importing the same report
    again changes nothing. Exits 1 when lines match nothing or differ (listed on the admin
    panel's Settlements page)."""
    from datetime import date, timedelta

    from .settlements import ReportFormatError
    from .settlements.imports import fetch_and_import, import_announced_adyen, import_file

    if bool(path) == bool(fetch):
        raise click.UsageError("give either --file FILE or --fetch")
    service = current_state().service()
    try:
        if path:
            with open(path, "rb") as handle:
                results = [import_file(service, provider, handle.read(), name=path.rsplit("/", 1)[-1], mode=mode)]
        elif provider == "adyen":
            results, problems = import_announced_adyen(service)
            for problem in problems:
                click.echo(f"not imported: {problem}", err=True)
            if not results and not problems:
                click.echo("adyen: no announced settlement report is waiting")
        else:
            wanted = day.date() if day else date.today() - timedelta(days=1)
            results = [fetch_and_import(service, provider, wanted, mode=mode)]
    except ReportFormatError as exc:
        raise click.ClickException(f"not a {provider} settlement report: {exc}") from None
    except ProviderError as exc:
        raise click.ClickException(exc.message) from None
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    for result in results:
        click.echo(str(result))
    if any(result.problems for result in results):
        click.echo("lines that match nothing or differ are listed on the admin panel's Settlements page", err=True)
        sys.exit(1)


@psp_cli.group("accounting")
def accounting_cli():
    """The accounting journal: exports for the accountant."""


@accounting_cli.command("export")
@click.option("--start", required=True, help="first day, YYYY-MM-DD")
@click.option("--end", required=True, help="last day, YYYY-MM-DD (a FEC: the fiscal year's closing date)")
@click.option("--format", "kind", type=click.Choice(["fec", "csv"]), required=True)
@click.option("--output", help="the file to write ('-': standard output); default: the format's own file name "
                                "(<SIREN>FEC<YYYYMMDD>.txt, psp-journal-<start>-<end>.csv) in this directory")
@click.option("--mode", type=click.Choice(["live", "test"]), default="live", show_default=True,
              help="whose movements: test payments are never in a FEC")
def accounting_export(start, end, kind, output, mode):
    """Export the journal of movements between START and END inclusive as a FEC (article A47 A-1
    of the livre des procédures fiscales) or a CSV. Written whole or not at all."""
    import os
    import tempfile

    from . import accounting
    from .config import ConfigurationError, export_options

    try:
        first, last = accounting.export_period(start, end)
        options = export_options(current_app.config, mode)
    except (ValueError, ConfigurationError) as exc:
        raise click.ClickException(str(exc)) from None
    session = current_state().db.session
    if kind == "fec":
        if not options.siren:
            raise click.ClickException("a FEC is named after the company's SIREN: set PSP_SIREN")
        if mode != "live":
            raise click.ClickException("a FEC holds live movements only: test payments are not accounting")
        chunks = accounting.fec_chunks(session, first, last, options)
        name = accounting.fec_filename(options.siren, last)
    else:
        chunks = (line.encode("utf-8") for line in accounting.csv_lines(session, first, last, options))
        name = accounting.csv_filename(first, last, mode)
    try:
        if output == "-":
            stream = sys.stdout.buffer
            for chunk in chunks:
                stream.write(chunk)
            stream.flush()
            return
        target = os.path.abspath(output or name)
        handle, partial = tempfile.mkstemp(prefix=".psp-export-", dir=os.path.dirname(target))
        try:
            with os.fdopen(handle, "wb") as file:
                for chunk in chunks:
                    file.write(chunk)
            os.replace(partial, target)
        except BaseException:
            os.unlink(partial)
            raise
    except accounting.ExportProblem as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"wrote {target}", err=True)
