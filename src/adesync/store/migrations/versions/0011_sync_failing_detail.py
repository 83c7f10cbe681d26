"""sync_runs and tokens: what failed when a sync ended on something other than Apple's answer

A database error, a full disk, a dead page writer or a defect now ends a run ``error`` with the
finding code ``sync_failing``; ``error_detail`` says which (``database_unavailable``,
``disk_full``, ``internal_error``) and ``error_reference`` names the log line holding the
traceback. The token keeps the same two for its last error. Earlier runs and errors read NULL.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sync_runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("error_detail", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("error_reference", sa.String(length=16), nullable=True))
    with op.batch_alter_table("tokens", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last_error_detail", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("last_error_reference", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tokens", schema=None) as batch_op:
        batch_op.drop_column("last_error_reference")
        batch_op.drop_column("last_error_detail")
    with op.batch_alter_table("sync_runs", schema=None) as batch_op:
        batch_op.drop_column("error_reference")
        batch_op.drop_column("error_detail")
