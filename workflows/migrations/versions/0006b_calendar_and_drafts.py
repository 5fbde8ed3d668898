"""the county's working-day calendar (holidays and make-up workdays by year) and task form drafts

Revision ID: 0006b
Revises: 0006
Create Date: 2026-12-01 09:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0006b"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "calendar_years",
        sa.Column("year", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("notice", sa.String(length=200), nullable=False),
        sa.Column("entered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("entered_by", sa.Integer(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["entered_by"], ["users.id"], name=op.f("fk_calendar_years_entered_by_users")
        ),
        sa.PrimaryKeyConstraint("year", name=op.f("pk_calendar_years")),
    )
    op.create_table(
        "calendar_days",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["year"], ["calendar_years.year"], name=op.f("fk_calendar_days_year_calendar_years")
        ),
        sa.PrimaryKeyConstraint("day", name=op.f("pk_calendar_days")),
    )
    op.create_index(op.f("ix_calendar_days_year"), "calendar_days", ["year"], unique=False)
    op.create_table(
        "task_drafts",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.String(length=36), nullable=False),
        sa.Column("fields", sa.Text(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("saved_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["task_id"], ["human_tasks.id"], name=op.f("fk_task_drafts_task_id_human_tasks")
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_task_drafts_user_id_users")),
        sa.PrimaryKeyConstraint("user_id", "task_id", name=op.f("pk_task_drafts")),
    )


def downgrade() -> None:
    op.drop_table("task_drafts")
    op.drop_table("calendar_days")
    op.drop_table("calendar_years")
