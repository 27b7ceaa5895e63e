"""overview by index: when a payment's oldest request awaiting the PSP was made, the range's totals
and failures read from one index, each provider's last notification found without walking past
the answers to our own calls

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05 15:00:00
"""
from datetime import datetime

from alembic import op
import sqlalchemy as sa


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def _oldest(extra):
    """The payment's oldest request awaiting the PSP, as flask_psp.models.oldest_request reads it
    (copied here: a migration does not change when the code does)."""
    found = []
    for op_ in (extra or {}).get('pending_operations') or []:
        try:
            found.append(datetime.fromisoformat(str(op_.get('requested_at'))))
        except ValueError:
            pass
    return min(found, default=None)


def upgrade():
    with op.batch_alter_table('psp_payment', schema=None) as batch_op:
        batch_op.add_column(sa.Column('awaiting_psp_since', sa.DateTime(), nullable=True))
    payments = sa.table('psp_payment', sa.column('id', sa.Integer()), sa.column('extra', sa.JSON()),
                        sa.column('awaiting_psp_since', sa.DateTime()))
    connection = op.get_bind()
    waiting = connection.execute(sa.select(payments.c.id, payments.c.extra).where(
        sa.cast(payments.c.extra, sa.String).like('%"pending_operations"%'))).all()
    for payment_id, extra in waiting:
        since = _oldest(extra)
        if since is not None:
            connection.execute(payments.update().where(payments.c.id == payment_id).values(awaiting_psp_since=since))
    with op.batch_alter_table('psp_payment', schema=None) as batch_op:
        batch_op.create_index('ix_psp_payment_awaiting_psp_since', ['awaiting_psp_since'], unique=False)
        batch_op.create_index('ix_psp_payment_mode_created_at_totals',
                              ['mode', 'created_at', 'provider', 'currency', 'status', 'captured_amount',
                               'refunded_amount', 'failure_reason'], unique=False)
    with op.batch_alter_table('psp_payment_event', schema=None) as batch_op:
        batch_op.drop_index('ix_psp_payment_event_provider_received_at')
        batch_op.create_index('ix_psp_payment_event_provider_source_received_at', ['provider', 'source', 'received_at'],
                              unique=False)
    if _statistics_on_expressions(connection):
        # the overview groups a range's payments by day: told how few days there are, PostgreSQL hashes
        # them (one pass) instead of sorting every payment of the range first
        op.execute('CREATE STATISTICS IF NOT EXISTS psp_payment_created_day ON (date(created_at)) FROM psp_payment')
        op.execute('ANALYZE psp_payment')


def _statistics_on_expressions(connection) -> bool:
    """PostgreSQL 14 and later keep statistics on an expression."""
    return connection.dialect.name == 'postgresql' and connection.dialect.server_version_info >= (14,)


def downgrade():
    if _statistics_on_expressions(op.get_bind()):
        op.execute('DROP STATISTICS IF EXISTS psp_payment_created_day')
    with op.batch_alter_table('psp_payment_event', schema=None) as batch_op:
        batch_op.drop_index('ix_psp_payment_event_provider_source_received_at')
        batch_op.create_index('ix_psp_payment_event_provider_received_at', ['provider', 'received_at'], unique=False)
    with op.batch_alter_table('psp_payment', schema=None) as batch_op:
        batch_op.drop_index('ix_psp_payment_mode_created_at_totals')
        batch_op.drop_index('ix_psp_payment_awaiting_psp_since')
        batch_op.drop_column('awaiting_psp_since')
