"""background processing and scheduled jobs: delayed capture, job holds, stored verified news

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 09:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('psp_payment', schema=None) as batch_op:
        batch_op.add_column(sa.Column('capture_delay_days', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('capture_due_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('held_until', sa.DateTime(), nullable=True))
        batch_op.create_index('ix_psp_payment_capture_due_at', ['capture_due_at'], unique=False)

    with op.batch_alter_table('psp_payment_event', schema=None) as batch_op:
        batch_op.add_column(sa.Column('verified_message', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('next_attempt_at', sa.DateTime(), nullable=True))
        batch_op.create_index('ix_psp_payment_event_outcome_next_attempt_at', ['outcome', 'next_attempt_at'],
                              unique=False)


def downgrade():
    with op.batch_alter_table('psp_payment_event', schema=None) as batch_op:
        batch_op.drop_index('ix_psp_payment_event_outcome_next_attempt_at')
        batch_op.drop_column('next_attempt_at')
        batch_op.drop_column('verified_message')

    with op.batch_alter_table('psp_payment', schema=None) as batch_op:
        batch_op.drop_index('ix_psp_payment_capture_due_at')
        batch_op.drop_column('held_until')
        batch_op.drop_column('capture_due_at')
        batch_op.drop_column('capture_delay_days')
