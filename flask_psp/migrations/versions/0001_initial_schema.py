"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-22 07:50:15.958898
"""
from alembic import op
import sqlalchemy as sa


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('psp_admin_user',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('email', sa.String(length=255), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('failed_logins', sa.Integer(), nullable=False),
    sa.Column('locked_until', sa.DateTime(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('last_login_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_psp_admin_user')),
    sa.UniqueConstraint('email', name=op.f('uq_psp_admin_user_email'))
    )
    op.create_table('psp_audit_entry',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('actor', sa.String(length=255), nullable=False),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('target', sa.String(length=255), nullable=True),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_psp_audit_entry'))
    )
    with op.batch_alter_table('psp_audit_entry', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_psp_audit_entry_at'), ['at'], unique=False)

    op.create_table('psp_page_settings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('brand_name', sa.String(length=128), nullable=True),
    sa.Column('logo_url', sa.String(length=512), nullable=True),
    sa.Column('primary_color', sa.String(length=7), nullable=True),
    sa.Column('accent_color', sa.String(length=7), nullable=True),
    sa.Column('messages', sa.JSON(), nullable=False),
    sa.Column('provider_look', sa.JSON(), nullable=False),
    sa.Column('notifications', sa.JSON(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_psp_page_settings'))
    )
    op.create_table('psp_payment',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('token', sa.String(length=64), nullable=False),
    sa.Column('order_ref', sa.String(length=128), nullable=False),
    sa.Column('provider', sa.String(length=32), nullable=False),
    sa.Column('mode', sa.String(length=8), nullable=False),
    sa.Column('capture', sa.String(length=8), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('status', sa.String(length=24), nullable=False),
    sa.Column('psp_reference', sa.String(length=128), nullable=True),
    sa.Column('authorized_amount', sa.BigInteger(), nullable=False),
    sa.Column('captured_amount', sa.BigInteger(), nullable=False),
    sa.Column('refunded_amount', sa.BigInteger(), nullable=False),
    sa.Column('failure_reason', sa.String(length=255), nullable=True),
    sa.Column('flag', sa.String(length=255), nullable=True),
    sa.Column('locale', sa.String(length=16), nullable=True),
    sa.Column('email', sa.String(length=255), nullable=True),
    sa.Column('redirect_url', sa.Text(), nullable=True),
    sa.Column('order_marked_at', sa.DateTime(), nullable=True),
    sa.Column('extra', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.Column('paid_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_psp_payment')),
    sa.UniqueConstraint('token', name=op.f('uq_psp_payment_token'))
    )
    with op.batch_alter_table('psp_payment', schema=None) as batch_op:
        batch_op.create_index('ix_psp_payment_created_at_id', ['created_at', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_psp_payment_order_ref'), ['order_ref'], unique=False)
        batch_op.create_index('ix_psp_payment_provider_psp_reference', ['provider', 'psp_reference'], unique=False)
        batch_op.create_index(batch_op.f('ix_psp_payment_status'), ['status'], unique=False)

    op.create_table('psp_provider_settings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=32), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('mode', sa.String(length=8), nullable=False),
    sa.Column('capture', sa.String(length=8), nullable=False),
    sa.Column('capture_delay_days', sa.Integer(), nullable=False),
    sa.Column('three_ds', sa.String(length=24), nullable=False),
    sa.Column('min_amount', sa.BigInteger(), nullable=True),
    sa.Column('max_amount', sa.BigInteger(), nullable=True),
    sa.Column('currencies', sa.String(length=255), nullable=True),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('credentials', sa.Text(), nullable=True),
    sa.Column('accounting', sa.JSON(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_psp_provider_settings')),
    sa.UniqueConstraint('name', name=op.f('uq_psp_provider_settings_name'))
    )
    op.create_table('psp_payment_event',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('provider', sa.String(length=32), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('received_at', sa.DateTime(), nullable=False),
    sa.Column('remote_addr', sa.String(length=64), nullable=True),
    sa.Column('headers', sa.JSON(), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('content_type', sa.String(length=128), nullable=True),
    sa.Column('verified', sa.Boolean(), nullable=True),
    sa.Column('verification_error', sa.String(length=255), nullable=True),
    sa.Column('dedupe_key', sa.String(length=191), nullable=True),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('outcome_detail', sa.Text(), nullable=True),
    sa.Column('event_type', sa.String(length=64), nullable=True),
    sa.Column('psp_reference', sa.String(length=128), nullable=True),
    sa.Column('mode', sa.String(length=8), nullable=True),
    sa.Column('amount', sa.BigInteger(), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=True),
    sa.Column('payment_id', sa.Integer(), nullable=True),
    sa.Column('parent_id', sa.Integer(), nullable=True),
    sa.Column('processed_at', sa.DateTime(), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['parent_id'], ['psp_payment_event.id'], name=op.f('fk_psp_payment_event_parent_id_psp_payment_event')),
    sa.ForeignKeyConstraint(['payment_id'], ['psp_payment.id'], name=op.f('fk_psp_payment_event_payment_id_psp_payment')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_psp_payment_event')),
    sa.UniqueConstraint('dedupe_key', name=op.f('uq_psp_payment_event_dedupe_key'))
    )
    with op.batch_alter_table('psp_payment_event', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_psp_payment_event_outcome'), ['outcome'], unique=False)
        batch_op.create_index(batch_op.f('ix_psp_payment_event_payment_id'), ['payment_id'], unique=False)
        batch_op.create_index('ix_psp_payment_event_received_at_id', ['received_at', 'id'], unique=False)



def downgrade():
    with op.batch_alter_table('psp_payment_event', schema=None) as batch_op:
        batch_op.drop_index('ix_psp_payment_event_received_at_id')
        batch_op.drop_index(batch_op.f('ix_psp_payment_event_payment_id'))
        batch_op.drop_index(batch_op.f('ix_psp_payment_event_outcome'))

    op.drop_table('psp_payment_event')
    op.drop_table('psp_provider_settings')
    with op.batch_alter_table('psp_payment', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_psp_payment_status'))
        batch_op.drop_index('ix_psp_payment_provider_psp_reference')
        batch_op.drop_index(batch_op.f('ix_psp_payment_order_ref'))
        batch_op.drop_index('ix_psp_payment_created_at_id')

    op.drop_table('psp_payment')
    op.drop_table('psp_page_settings')
    with op.batch_alter_table('psp_audit_entry', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_psp_audit_entry_at'))

    op.drop_table('psp_audit_entry')
    op.drop_table('psp_admin_user')
