"""admin sessions and sign-in throttling: a session generation and a lockout count on each built-in
account, and the failed sign-ins of each client address

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05 08:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('psp_admin_user', schema=None) as batch_op:
        batch_op.add_column(sa.Column('lockouts', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('last_failure_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('session_generation', sa.Integer(), server_default='0', nullable=False))
    op.create_table('psp_login_throttle',
    sa.Column('address', sa.String(length=64), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('lockouts', sa.Integer(), nullable=False),
    sa.Column('blocked_until', sa.DateTime(), nullable=True),
    sa.Column('last_failure_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('address', name=op.f('pk_psp_login_throttle'))
    )


def downgrade():
    op.drop_table('psp_login_throttle')
    with op.batch_alter_table('psp_admin_user', schema=None) as batch_op:
        batch_op.drop_column('session_generation')
        batch_op.drop_column('last_failure_at')
        batch_op.drop_column('lockouts')
