"""settlement reconciliation: each PSP settlement report read in (psp_settlement_import) and its
lines with what reconciliation made of them (psp_settlement_lines)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 11:30:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'psp_settlement_import',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('provider', sa.String(length=32), nullable=False),
        sa.Column('mode', sa.String(length=8), nullable=False),
        sa.Column('source', sa.String(length=16), nullable=False),
        sa.Column('name', sa.String(length=255), nullable=True),
        sa.Column('digest', sa.String(length=64), nullable=False),
        sa.Column('report_date', sa.Date(), nullable=True),
        sa.Column('imported_at', sa.DateTime(), nullable=False),
        sa.Column('line_count', sa.Integer(), nullable=False),
        sa.Column('known_count', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_psp_settlement_import')),
        sa.UniqueConstraint('provider', 'digest', name='uq_psp_settlement_import_provider_digest'),
    )
    op.create_table(
        'psp_settlement_lines',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('import_id', sa.Integer(), nullable=False),
        sa.Column('provider', sa.String(length=32), nullable=False),
        sa.Column('mode', sa.String(length=8), nullable=False),
        sa.Column('line_key', sa.String(length=191), nullable=False),
        sa.Column('line_number', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=24), nullable=False),
        sa.Column('psp_reference', sa.String(length=128), nullable=True),
        sa.Column('merchant_reference', sa.String(length=128), nullable=True),
        sa.Column('payout_id', sa.String(length=64), nullable=True),
        sa.Column('booked_on', sa.Date(), nullable=False),
        sa.Column('currency', sa.String(length=3), nullable=False),
        sa.Column('gross', sa.BigInteger(), nullable=False),
        sa.Column('net_currency', sa.String(length=3), nullable=False),
        sa.Column('fee', sa.BigInteger(), nullable=False),
        sa.Column('net', sa.BigInteger(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('detail', sa.String(length=255), nullable=True),
        sa.Column('payment_id', sa.Integer(), nullable=True),
        sa.Column('movement_id', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['import_id'], ['psp_settlement_import.id'],
                                name=op.f('fk_psp_settlement_lines_import_id_psp_settlement_import')),
        sa.ForeignKeyConstraint(['payment_id'], ['psp_payment.id'],
                                name=op.f('fk_psp_settlement_lines_payment_id_psp_payment')),
        sa.ForeignKeyConstraint(['movement_id'], ['psp_movements.id'],
                                name=op.f('fk_psp_settlement_lines_movement_id_psp_movements')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_psp_settlement_lines')),
        sa.UniqueConstraint('provider', 'line_key', name='uq_psp_settlement_lines_provider_line_key'),
        sa.UniqueConstraint('movement_id', name=op.f('uq_psp_settlement_lines_movement_id')),
    )
    with op.batch_alter_table('psp_settlement_lines', schema=None) as batch_op:
        batch_op.create_index('ix_psp_settlement_lines_status_id', ['status', 'id'], unique=False)
        batch_op.create_index('ix_psp_settlement_lines_provider_id', ['provider', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_psp_settlement_lines_import_id'), ['import_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_psp_settlement_lines_payment_id'), ['payment_id'], unique=False)


def downgrade():
    with op.batch_alter_table('psp_settlement_lines', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_psp_settlement_lines_payment_id'))
        batch_op.drop_index(batch_op.f('ix_psp_settlement_lines_import_id'))
        batch_op.drop_index('ix_psp_settlement_lines_provider_id')
        batch_op.drop_index('ix_psp_settlement_lines_status_id')
    op.drop_table('psp_settlement_lines')
    op.drop_table('psp_settlement_import')
