"""the accounting journal: psp_movements, one row per movement of money (capture, refund, chargeback,
fee, payout…) written by the transaction that proved it, never updated; and the movements of the
payments made before it, rebuilt from the inbox as well as the history allows

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05 11:00:00
"""
import logging
from datetime import datetime, timezone

from alembic import op
import sqlalchemy as sa

log = logging.getLogger("flask_psp.migrations")


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'psp_movements',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=24), nullable=False),
        sa.Column('occurred_at', sa.DateTime(), nullable=False),
        sa.Column('recorded_at', sa.DateTime(), nullable=False),
        sa.Column('amount', sa.BigInteger(), nullable=False),
        sa.Column('currency', sa.String(length=3), nullable=False),
        sa.Column('provider', sa.String(length=32), nullable=False),
        sa.Column('mode', sa.String(length=8), nullable=False),
        sa.Column('payment_id', sa.Integer(), nullable=True),
        sa.Column('psp_reference', sa.String(length=128), nullable=True),
        sa.Column('event_id', sa.Integer(), nullable=True),
        sa.Column('settlement_line_id', sa.Integer(), nullable=True),
        sa.Column('note', sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(['payment_id'], ['psp_payment.id'],
                                name=op.f('fk_psp_movements_payment_id_psp_payment')),
        sa.ForeignKeyConstraint(['event_id'], ['psp_payment_event.id'],
                                name=op.f('fk_psp_movements_event_id_psp_payment_event')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_psp_movements')),
    )
    with op.batch_alter_table('psp_movements', schema=None) as batch_op:
        batch_op.create_index('ix_psp_movements_mode_occurred_at_id', ['mode', 'occurred_at', 'id'], unique=False)
        batch_op.create_index('ix_psp_movements_provider_psp_reference', ['provider', 'psp_reference'],
                              unique=False)
        batch_op.create_index(batch_op.f('ix_psp_movements_payment_id'), ['payment_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_psp_movements_event_id'), ['event_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_psp_movements_settlement_line_id'), ['settlement_line_id'],
                              unique=False)
    rebuild_history(op.get_bind())


def downgrade():
    with op.batch_alter_table('psp_movements', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_psp_movements_settlement_line_id'))
        batch_op.drop_index(batch_op.f('ix_psp_movements_event_id'))
        batch_op.drop_index(batch_op.f('ix_psp_movements_payment_id'))
        batch_op.drop_index('ix_psp_movements_provider_psp_reference')
        batch_op.drop_index('ix_psp_movements_mode_occurred_at_id')
    op.drop_table('psp_movements')


# --------------------------------------------------------------------- the movements of the past
# Self-contained (the tables as they are at this revision): the plugin's code may change later,
# this history may not.
_payments = sa.table(
    'psp_payment', sa.column('id', sa.Integer), sa.column('provider', sa.String), sa.column('mode', sa.String),
    sa.column('capture', sa.String), sa.column('currency', sa.String), sa.column('psp_reference', sa.String),
    sa.column('captured_amount', sa.BigInteger), sa.column('refunded_amount', sa.BigInteger),
    sa.column('paid_at', sa.DateTime), sa.column('updated_at', sa.DateTime), sa.column('created_at', sa.DateTime),
)
_inbox = sa.table(
    'psp_payment_event', sa.column('id', sa.Integer), sa.column('payment_id', sa.Integer),
    sa.column('outcome', sa.String), sa.column('received_at', sa.DateTime), sa.column('processed_at', sa.DateTime),
    sa.column('verified_message', sa.JSON),
)
_movements = sa.table(
    'psp_movements', sa.column('kind', sa.String), sa.column('occurred_at', sa.DateTime),
    sa.column('recorded_at', sa.DateTime), sa.column('amount', sa.BigInteger), sa.column('currency', sa.String),
    sa.column('provider', sa.String), sa.column('mode', sa.String), sa.column('payment_id', sa.Integer),
    sa.column('psp_reference', sa.String), sa.column('event_id', sa.Integer), sa.column('note', sa.Text),
)
UNDATED = "rebuilt at migration 0008: not found in the inbox history, dated by the payment's {column}"


def _total(event, *names):
    for name in names:
        value = event.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def history_of(payment, rows):
    """The movements one payment's applied inbox rows prove, oldest first, then what its amounts
    say moved that the inbox does not show (dated by the payment's own dates, with a note)."""
    captured = refunded = 0
    found = []

    def moved(kind, amount, row, note=None, when=None, column=None):
        if amount > 0:
            found.append({'kind': kind, 'amount': amount, 'event_id': row and row.id,
                          'occurred_at': when or row.processed_at or row.received_at,
                          'note': note or (UNDATED.format(column=column) if column else None)})

    for row in rows:
        message = row.verified_message if isinstance(row.verified_message, dict) else {}
        for event in message.get('events') or []:
            kind = event.get('kind')
            if kind == 'captured' or (kind == 'approved' and payment.capture == 'auto'):
                total = _total(event, 'captured_total', 'authorized_total', 'amount')
                total = min(total if total is not None else 0, payment.captured_amount)
                if total > captured:
                    moved('capture', total - captured, row)
                    captured = total
            elif kind == 'refunded':
                total = _total(event, 'refunded_total')
                if total is None:
                    total = refunded + (_total(event, 'refund_delta') or 0)
                total = min(total, payment.refunded_amount, captured)
                if total > refunded:
                    moved('refund', total - refunded, row)
                    refunded = total
    if payment.captured_amount > captured:
        column = 'paid_at' if payment.paid_at else 'created_at'
        moved('capture', payment.captured_amount - captured, None, when=payment.paid_at or payment.created_at,
              column=column)
    if payment.refunded_amount > refunded:
        moved('refund', payment.refunded_amount - refunded, None, when=payment.updated_at, column='updated_at')
    return found


def rebuild_history(connection):
    """One movement per capture and refund of the payments made before the journal existed, from
    the inbox rows that applied them; what the inbox does not explain is dated by the payment and
    says so in its note, and is logged."""
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    undated = 0
    payments = connection.execute(sa.select(_payments).where(
        sa.or_(_payments.c.captured_amount > 0, _payments.c.refunded_amount > 0)).order_by(_payments.c.id)).all()
    for payment in payments:
        rows = connection.execute(sa.select(_inbox).where(
            _inbox.c.payment_id == payment.id, _inbox.c.outcome == 'applied',
            _inbox.c.verified_message.is_not(None)).order_by(_inbox.c.id)).all()
        found = history_of(payment, rows)
        for movement in found:
            if movement['event_id'] is None:
                undated += 1
                log.warning("payment %s: %s of %s %s %s", payment.id, movement['kind'], movement['amount'],
                            payment.currency, movement['note'])
        if found:
            connection.execute(_movements.insert(), [
                {**movement, 'recorded_at': now, 'currency': payment.currency, 'provider': payment.provider,
                 'mode': payment.mode, 'payment_id': payment.id, 'psp_reference': payment.psp_reference}
                for movement in found])
    if undated:
        log.warning("%s movement(s) could not be dated from the inbox: dated by their payment, noted "
                    "'rebuilt at migration 0008' (the accountant should check them)", undated)
