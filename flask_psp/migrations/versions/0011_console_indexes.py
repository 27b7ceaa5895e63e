"""console overview: flagged payments and each provider's last notification found by index

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 12:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('psp_payment', schema=None) as batch_op:
        batch_op.create_index('ix_psp_payment_flagged', ['id'], unique=False,
                              postgresql_where=sa.text('flag IS NOT NULL'), sqlite_where=sa.text('flag IS NOT NULL'))
    with op.batch_alter_table('psp_payment_event', schema=None) as batch_op:
        batch_op.create_index('ix_psp_payment_event_provider_received_at', ['provider', 'received_at'], unique=False)


def downgrade():
    with op.batch_alter_table('psp_payment_event', schema=None) as batch_op:
        batch_op.drop_index('ix_psp_payment_event_provider_received_at')
    with op.batch_alter_table('psp_payment', schema=None) as batch_op:
        batch_op.drop_index('ix_psp_payment_flagged')
