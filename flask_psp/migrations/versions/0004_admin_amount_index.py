"""admin payments list: index for the amount filter

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 12:00:00
"""
from alembic import op


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('psp_payment', schema=None) as batch_op:
        batch_op.create_index('ix_psp_payment_amount_id', ['amount', 'id'], unique=False)


def downgrade():
    with op.batch_alter_table('psp_payment', schema=None) as batch_op:
        batch_op.drop_index('ix_psp_payment_amount_id')
