"""process studio: deploy comments, process owners' drafts, moving running cases between versions

Revision ID: 0008
Revises: 0005
Create Date: 2026-12-03 09:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0006b"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN (never a table rebuild: a database in use refuses it on SQLite).
    op.add_column("process_versions", sa.Column("comment", sa.Text(), nullable=True))
    op.create_table(
        "process_drafts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("process_key", sa.String(100), nullable=False),
        sa.Column("owner_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("base_version_id", sa.Integer(), sa.ForeignKey("process_versions.id"), nullable=True),
        sa.Column("files", sa.Text(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("process_key", "owner_id"),
    )
    op.create_table(
        "migration_batches",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("process_key", sa.String(100), nullable=False),
        sa.Column("to_version_id", sa.Integer(), sa.ForeignKey("process_versions.id"), nullable=False),
        sa.Column("case_ids", sa.Text(), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("done", sa.Integer(), nullable=False),
        sa.Column("moved", sa.Integer(), nullable=False),
        sa.Column("skipped", sa.Integer(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("requested_by", sa.Integer(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
    )
    op.create_table(
        "case_migrations",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("case_id", sa.Integer(), sa.ForeignKey("cases.id"), nullable=False),
        sa.Column("batch_id", sa.Integer(), sa.ForeignKey("migration_batches.id"), nullable=True),
        sa.Column("from_version_id", sa.Integer(), sa.ForeignKey("process_versions.id"), nullable=False),
        sa.Column("to_version_id", sa.Integer(), sa.ForeignKey("process_versions.id"), nullable=False),
        sa.Column("old_state", sa.Text(), nullable=False),
        sa.Column("old_lock_version", sa.String(32), nullable=False),
        sa.Column("new_lock_version", sa.String(32), nullable=False),
        sa.Column("migrated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("migrated_by", sa.Integer(), sa.ForeignKey("users.id"), nullable=True),
        sa.Column("reverted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reverted_by", sa.Integer(), sa.ForeignKey("users.id"), nullable=True),
    )
    op.create_index("ix_case_migrations_case_id", "case_migrations", ["case_id"])


def downgrade() -> None:
    op.drop_index("ix_case_migrations_case_id", table_name="case_migrations")
    op.drop_table("case_migrations")
    op.drop_table("migration_batches")
    op.drop_table("process_drafts")
    op.drop_column("process_versions", "comment")
