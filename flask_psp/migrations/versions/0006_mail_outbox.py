"""the mail outbox: notification e-mails are rows written by the transaction that decides them,
sent and retried by a sender, never dropped

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05 08:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'psp_mail',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=32), nullable=False),
        sa.Column('provider', sa.String(length=32), nullable=True),
        sa.Column('payment_id', sa.Integer(), nullable=True),
        sa.Column('recipients', sa.Text(), nullable=False),
        sa.Column('subject', sa.String(length=255), nullable=False),
        sa.Column('body', sa.Text(), nullable=False),
        sa.Column('data', sa.JSON(), nullable=False),
        sa.Column('notice_count', sa.Integer(), nullable=False),
        sa.Column('status', sa.String(length=8), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('next_attempt_at', sa.DateTime(), nullable=True),
        sa.Column('last_error', sa.String(length=255), nullable=True),
        sa.Column('dedupe_key', sa.String(length=64), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('composed_at', sa.DateTime(), nullable=True),
        sa.Column('sent_at', sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_psp_mail')),
        sa.UniqueConstraint('dedupe_key', name=op.f('uq_psp_mail_dedupe_key')),
    )
    with op.batch_alter_table('psp_mail', schema=None) as batch_op:
        batch_op.create_index('ix_psp_mail_status_next_attempt_at', ['status', 'next_attempt_at'], unique=False)
        batch_op.create_index('ix_psp_mail_kind_provider_id', ['kind', 'provider', 'id'], unique=False)


def downgrade():
    with op.batch_alter_table('psp_mail', schema=None) as batch_op:
        batch_op.drop_index('ix_psp_mail_kind_provider_id')
        batch_op.drop_index('ix_psp_mail_status_next_attempt_at')
    op.drop_table('psp_mail')
