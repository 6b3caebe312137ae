"""the living plan: unit kind, retired units and tasks, lead units, criterion labels, task-criterion links

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_KIND = sa.Enum("区直单位", "街道", "驻区单位", name="unitkind", native_enum=False, length=24)


def upgrade() -> None:
    with op.batch_alter_table("unit") as batch:
        batch.add_column(sa.Column("kind", _KIND, nullable=False, server_default="区直单位"))
        batch.add_column(sa.Column("retired", sa.Boolean(), nullable=False, server_default=sa.false()))
    with op.batch_alter_table("task") as batch:
        batch.add_column(sa.Column("retired", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("lead_unit_id", sa.Integer(), nullable=True))
        batch.create_foreign_key("fk_task_lead_unit_id_unit", "unit", ["lead_unit_id"], ["id"])
    # The lead of a task already imported: its first unit, as the plan listed them.
    op.execute("UPDATE task SET lead_unit_id = (SELECT a.unit_id FROM assignment a WHERE a.task_id = task.id "
               "ORDER BY a.id LIMIT 1)")
    with op.batch_alter_table("criterion") as batch:
        batch.add_column(sa.Column("label", sa.String(), nullable=True))
    op.create_table(
        "taskcriterion",
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("criterion_id", sa.Integer(), nullable=False),
        sa.Column("suggested", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["criterion_id"], ["criterion.id"]),
        sa.ForeignKeyConstraint(["task_id"], ["task.id"]),
        sa.PrimaryKeyConstraint("task_id", "criterion_id"),
    )
    op.create_index(op.f("ix_taskcriterion_criterion_id"), "taskcriterion", ["criterion_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_taskcriterion_criterion_id"), table_name="taskcriterion")
    op.drop_table("taskcriterion")
    with op.batch_alter_table("criterion") as batch:
        batch.drop_column("label")
    with op.batch_alter_table("task") as batch:
        batch.drop_constraint("fk_task_lead_unit_id_unit", type_="foreignkey")
        batch.drop_column("lead_unit_id")
        batch.drop_column("retired")
    with op.batch_alter_table("unit") as batch:
        batch.drop_column("retired")
        batch.drop_column("kind")
