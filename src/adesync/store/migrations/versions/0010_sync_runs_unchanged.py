"""sync_runs: how many devices a run found unchanged

A run's ``added`` counted every device of a full fetch, so a second fetch of the same devices
reported them all as added. ``added`` now counts devices new to the store, ``modified`` those
whose stored Apple fields changed, and the new ``unchanged`` the rest. Runs recorded before
this revision keep their counts and show 0 unchanged.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sync_runs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("unchanged", sa.Integer(), server_default="0", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("sync_runs", schema=None) as batch_op:
        batch_op.drop_column("unchanged")
