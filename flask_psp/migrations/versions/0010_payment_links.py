"""payment links: the psp_payment_link table, and an HTML part for outbox mails

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05 11:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('psp_payment_link',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('token', sa.String(length=64), nullable=False),
    sa.Column('order_ref', sa.String(length=128), nullable=False),
    sa.Column('email', sa.String(length=255), nullable=True),
    sa.Column('locale', sa.String(length=16), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('created_by', sa.String(length=255), nullable=True),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.Column('sent_at', sa.DateTime(), nullable=True),
    sa.Column('send_count', sa.Integer(), nullable=False),
    sa.Column('reminder_sent_at', sa.DateTime(), nullable=True),
    sa.Column('opened_at', sa.DateTime(), nullable=True),
    sa.Column('cancelled_at', sa.DateTime(), nullable=True),
    sa.Column('cancelled_by', sa.String(length=255), nullable=True),
    sa.Column('paid_at', sa.DateTime(), nullable=True),
    sa.Column('payment_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['payment_id'], ['psp_payment.id'], name=op.f('fk_psp_payment_link_payment_id_psp_payment')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_psp_payment_link')),
    sa.UniqueConstraint('token', name=op.f('uq_psp_payment_link_token'))
    )
    with op.batch_alter_table('psp_payment_link', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_psp_payment_link_order_ref'), ['order_ref'], unique=False)
        batch_op.create_index('ix_psp_payment_link_reminder_sent_at_expires_at', ['reminder_sent_at', 'expires_at'],
                              unique=False)
    with op.batch_alter_table('psp_mail', schema=None) as batch_op:
        batch_op.add_column(sa.Column('html_body', sa.Text(), nullable=True))


def downgrade():
    with op.batch_alter_table('psp_mail', schema=None) as batch_op:
        batch_op.drop_column('html_body')
    with op.batch_alter_table('psp_payment_link', schema=None) as batch_op:
        batch_op.drop_index('ix_psp_payment_link_reminder_sent_at_expires_at')
        batch_op.drop_index(batch_op.f('ix_psp_payment_link_order_ref'))
    op.drop_table('psp_payment_link')
