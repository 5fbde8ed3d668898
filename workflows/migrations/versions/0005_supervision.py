"""supervision: county targets, the office log, review samples, and indexes for the case list and dashboard

Revision ID: 0005
Revises: 0003
Create Date: 2026-11-24 09:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # New tables and indexes only: nothing is rebuilt, so a database in use upgrades in place.
    op.create_table(
        "county_targets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("county_code", sa.String(length=12), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Numeric(precision=14, scale=4), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["county_code"], ["areas.code"], name=op.f("fk_county_targets_county_code_areas")
        ),
        sa.ForeignKeyConstraint(["updated_by"], ["users.id"], name=op.f("fk_county_targets_updated_by_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_county_targets")),
        sa.UniqueConstraint("county_code", "key", name=op.f("uq_county_targets_county_code_key")),
    )
    op.create_table(
        "office_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=True),
        sa.Column("area_code", sa.String(length=12), nullable=True),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=True),
        sa.Column("target", sa.String(length=300), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_office_log_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_office_log")),
    )
    op.create_index("ix_office_log_at", "office_log", ["at"])
    op.create_index("ix_office_log_area_at", "office_log", ["area_code", "at"])
    op.create_index(op.f("ix_office_log_kind"), "office_log", ["kind"])
    op.create_index(op.f("ix_office_log_user_id"), "office_log", ["user_id"])
    op.create_table(
        "review_samples",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("area_code", sa.String(length=12), nullable=False),
        sa.Column("process_key", sa.String(length=100), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("requested", sa.Integer(), nullable=False),
        sa.Column("population", sa.Integer(), nullable=False),
        sa.Column("seed", sa.String(length=64), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["created_by"], ["users.id"], name=op.f("fk_review_samples_created_by_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_samples")),
    )
    op.create_index(op.f("ix_review_samples_area_code"), "review_samples", ["area_code"])
    op.create_table(
        "review_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sample_id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reviewed_by", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name=op.f("fk_review_items_case_id_cases")),
        sa.ForeignKeyConstraint(
            ["sample_id"], ["review_samples.id"], name=op.f("fk_review_items_sample_id_review_samples")
        ),
        sa.ForeignKeyConstraint(["reviewed_by"], ["users.id"], name=op.f("fk_review_items_reviewed_by_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_items")),
        sa.UniqueConstraint("sample_id", "case_id", name=op.f("uq_review_items_sample_id_case_id")),
    )
    op.create_index(op.f("ix_review_items_case_id"), "review_items", ["case_id"])
    op.create_index(op.f("ix_review_items_sample_id"), "review_items", ["sample_id"])
    op.create_index("ix_cases_started_at", "cases", ["started_at"])
    op.create_index("ix_cases_status_process", "cases", ["status", "process_key", "area_code"])
    op.create_index("ix_visits_visited_on", "visits", ["visited_on", "elder_id"])
    op.create_index(
        "ix_human_tasks_supervision",
        "human_tasks",
        ["status", "area_code", "process_key", "task_spec", "role", "due_at", "case_id"],
    )
    op.create_index(
        "ix_elders_supervision",
        "elders",
        [
            "residence_area_code",
            "status",
            "disability_level",
            "disability_valid_until",
            "tekun",
            "institutional_support",
        ],
    )


def downgrade() -> None:
    op.drop_index("ix_elders_supervision", table_name="elders")
    op.drop_index("ix_human_tasks_supervision", table_name="human_tasks")
    op.drop_index("ix_visits_visited_on", table_name="visits")
    op.drop_index("ix_cases_status_process", table_name="cases")
    op.drop_index("ix_cases_started_at", table_name="cases")
    op.drop_table("review_items")
    op.drop_table("review_samples")
    op.drop_table("office_log")
    op.drop_table("county_targets")
