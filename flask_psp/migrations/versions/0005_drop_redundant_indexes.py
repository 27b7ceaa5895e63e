"""drop the single-column status and outcome indexes: (status, id) and (outcome, id) serve every
query they served, and each index is one more write for every payment move and inbox row

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 01:00:00
"""
from alembic import op


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('psp_payment', schema=None) as batch_op:
        batch_op.drop_index('ix_psp_payment_status')
    with op.batch_alter_table('psp_payment_event', schema=None) as batch_op:
        batch_op.drop_index('ix_psp_payment_event_outcome')


def downgrade():
    with op.batch_alter_table('psp_payment_event', schema=None) as batch_op:
        batch_op.create_index('ix_psp_payment_event_outcome', ['outcome'], unique=False)
    with op.batch_alter_table('psp_payment', schema=None) as batch_op:
        batch_op.create_index('ix_psp_payment_status', ['status'], unique=False)
