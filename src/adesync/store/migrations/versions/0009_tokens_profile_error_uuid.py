"""tokens: which profile Apple's last profile error was about

``profile_not_found`` named the token's current default, so after a refused change (or a new
default) it could name a valid profile as missing. The profile Apple refused is now kept with
the error; the finding is raised only while that profile is still the default in use. Older
rows (the profile unknown) are taken to be about the default they had then.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tokens", schema=None) as batch_op:
        batch_op.add_column(sa.Column("profile_error_uuid", sa.String(length=64), nullable=True))
    tokens = sa.table(
        "tokens",
        sa.column("default_profile_uuid", sa.String()),
        sa.column("profile_error_code", sa.String()),
        sa.column("profile_error_uuid", sa.String()),
    )
    op.execute(
        tokens.update()
        .where(tokens.c.profile_error_code.is_not(None))
        .values(profile_error_uuid=tokens.c.default_profile_uuid)
    )


def downgrade() -> None:
    with op.batch_alter_table("tokens", schema=None) as batch_op:
        batch_op.drop_column("profile_error_uuid")
