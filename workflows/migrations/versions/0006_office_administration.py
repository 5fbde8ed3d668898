"""organisations with their staff, retired areas, forced password changes, one-time password links and
the log of administrative changes

Revision ID: 0006
Revises: 0003
Create Date: 2026-12-01 09:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def _add_reference(
    table: str, column: str, target: str, *, unique: bool = False, index: bool = False
) -> None:
    """Add a nullable column referring to `target`.id to a table in use: plain ADD COLUMN, never a rebuild
    (SQLite refuses to rebuild a table that others refer to, and cannot add a constraint afterwards, so
    the reference is declared with the column there)."""
    name = f"fk_{table}_{column}_{target}"
    if op.get_bind().dialect.name == "sqlite":
        op.execute(f"ALTER TABLE {table} ADD COLUMN {column} INTEGER REFERENCES {target} (id)")
    else:
        op.add_column(table, sa.Column(column, sa.Integer(), nullable=True))
        op.create_foreign_key(name, table, target, [column], ["id"])
    if unique:  # an index, not a constraint: what SQLite can add to a table in use
        op.create_index(f"uq_{table}_{column}", table, [column], unique=True)
    if index:
        op.create_index(f"ix_{table}_{column}", table, [column], unique=False)


def upgrade() -> None:
    op.create_table(
        "organisations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("area_code", sa.String(length=12), nullable=False),
        sa.Column("address", sa.String(length=255), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=False),
        sa.Column("contact", sa.String(length=64), nullable=False),
        sa.Column("contract_start", sa.Date(), nullable=True),
        sa.Column("contract_end", sa.Date(), nullable=True),
        sa.Column("services", sa.Text(), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["area_code"], ["areas.code"], name=op.f("fk_organisations_area_code_areas")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_organisations")),
    )
    op.create_index(op.f("ix_organisations_area_code"), "organisations", ["area_code"], unique=False)
    op.create_index(op.f("ix_organisations_kind"), "organisations", ["kind"], unique=False)
    op.create_table(
        "organisation_areas",
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("area_code", sa.String(length=12), nullable=False),
        sa.ForeignKeyConstraint(
            ["area_code"], ["areas.code"], name=op.f("fk_organisation_areas_area_code_areas")
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=op.f("fk_organisation_areas_organisation_id_organisations"),
        ),
        sa.PrimaryKeyConstraint("organisation_id", "area_code", name=op.f("pk_organisation_areas")),
    )
    op.create_table(
        "facility_beds",
        sa.Column("facility_id", sa.Integer(), nullable=False),
        sa.Column("bed_type", sa.String(length=32), nullable=False),
        sa.Column("beds", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["facility_id"], ["facilities.id"], name=op.f("fk_facility_beds_facility_id_facilities")
        ),
        sa.PrimaryKeyConstraint("facility_id", "bed_type", name=op.f("pk_facility_beds")),
    )
    op.create_table(
        "admin_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("subject", sa.String(length=16), nullable=False),
        sa.Column("subject_id", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["actor_id"], ["users.id"], name=op.f("fk_admin_events_actor_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_admin_events")),
    )
    op.create_index("ix_admin_events_subject", "admin_events", ["subject", "subject_id"], unique=False)
    op.create_table(
        "password_resets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_password_resets_created_by_users")
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_password_resets_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_password_resets")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_password_resets_token_hash")),
    )
    op.create_index(op.f("ix_password_resets_user_id"), "password_resets", ["user_id"], unique=False)

    op.add_column("areas", sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column(
        "users", sa.Column("must_change_password", sa.Boolean(), nullable=False, server_default="0")
    )
    _add_reference("users", "organisation_id", "organisations", index=True)
    _add_reference("facilities", "organisation_id", "organisations", unique=True)
    _add_reference("cases", "organisation_id", "organisations", index=True)


def downgrade() -> None:
    for table, column in (
        ("cases", "organisation_id"),
        ("facilities", "organisation_id"),
        ("users", "organisation_id"),
    ):
        with op.batch_alter_table(table) as batch:
            batch.drop_column(column)
    op.drop_column("users", "must_change_password")
    op.drop_column("areas", "retired_at")
    op.drop_table("password_resets")
    op.drop_table("admin_events")
    op.drop_table("facility_beds")
    op.drop_table("organisation_areas")
    op.drop_table("organisations")
