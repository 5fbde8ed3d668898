"""count failed sign-ins and lock an account after repeated failures

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 04:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN, never a table rebuild: on SQLite a rebuild drops and recreates `users`, which the
    # foreign keys of a database in use refuse. The server default fills the rows already there.
    op.add_column("users", sa.Column("failed_logins", sa.Integer(), nullable=False, server_default="0"))
    op.add_column("users", sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("users", "locked_until")
    op.drop_column("users", "failed_logins")
