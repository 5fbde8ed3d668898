"""compress case state with lz4 on PostgreSQL

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 03:20:00

A case's state is rewritten on every step; lz4 writes it faster than PostgreSQL's default pglz.
Nothing changes on SQLite, or on a PostgreSQL server built without lz4.
"""

from alembic import op

from workflows.db import use_fast_compression

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    use_fast_compression(op.get_bind(), "cases")


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        for column in ("state", "data"):
            op.execute(f"ALTER TABLE cases ALTER COLUMN {column} SET COMPRESSION DEFAULT")
