"""admin panel: uploaded assets, indexes for the payments list and the inbox

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 08:15:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('psp_asset',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('content_type', sa.String(length=64), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_psp_asset')),
    sa.UniqueConstraint('key', name=op.f('uq_psp_asset_key'))
    )
    op.create_index('ix_psp_payment_status_id', 'psp_payment', ['status', 'id'], unique=False)
    op.create_index('ix_psp_payment_provider_id', 'psp_payment', ['provider', 'id'], unique=False)
    op.create_index('ix_psp_payment_email', 'psp_payment', ['email'], unique=False)
    op.create_index('ix_psp_payment_event_outcome_id', 'psp_payment_event', ['outcome', 'id'], unique=False)


def downgrade():
    op.drop_index('ix_psp_payment_event_outcome_id', table_name='psp_payment_event')
    op.drop_index('ix_psp_payment_email', table_name='psp_payment')
    op.drop_index('ix_psp_payment_provider_id', table_name='psp_payment')
    op.drop_index('ix_psp_payment_status_id', table_name='psp_payment')
    op.drop_table('psp_asset')
