"""the accounting journal: psp_movements, one row per movement of money (capture, refund, chargeback,
fee, payout…) written by the transaction that proved it, never updated; and the movements of the
payments made before it, rebuilt from the inbox as well as the history allows

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05 11:00:00
"""
from alembic import op
import sqlalchemy as sa


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


def downgrade():
    with op.batch_alter_table('psp_movements', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_psp_movements_settlement_line_id'))
        batch_op.drop_index(batch_op.f('ix_psp_movements_event_id'))
        batch_op.drop_index(batch_op.f('ix_psp_movements_payment_id'))
        batch_op.drop_index('ix_psp_movements_provider_psp_reference')
        batch_op.drop_index('ix_psp_movements_mode_occurred_at_id')
    op.drop_table('psp_movements')
