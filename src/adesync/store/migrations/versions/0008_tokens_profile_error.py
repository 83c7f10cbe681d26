"""tokens: the last profile error Apple gave, apart from the last error of any kind

The ``profile_invalid`` and ``profile_not_found`` findings read the token's last error, so any
later error of another kind (an outage, a throttled sync) hid a profile that Apple still
refuses until the next profile error. The profile error now has columns of its own; tokens whose
last error is a profile error start with it copied there.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from adesync.store.types import UTCDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

PROFILE_ERROR_CODES = ("profile_invalid", "profile_not_found")


def upgrade() -> None:
    with op.batch_alter_table("tokens", schema=None) as batch_op:
        batch_op.add_column(sa.Column("profile_error_code", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("profile_error_body", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("profile_error_at", UTCDateTime(), nullable=True))
    tokens = sa.table(
        "tokens",
        sa.column("last_error_code", sa.String()),
        sa.column("last_error_body", sa.Text()),
        sa.column("last_error_at", UTCDateTime()),
        sa.column("profile_error_code", sa.String()),
        sa.column("profile_error_body", sa.Text()),
        sa.column("profile_error_at", UTCDateTime()),
    )
    op.execute(
        tokens.update()
        .where(tokens.c.last_error_code.in_(PROFILE_ERROR_CODES))
        .values(
            profile_error_code=tokens.c.last_error_code,
            profile_error_body=tokens.c.last_error_body,
            profile_error_at=tokens.c.last_error_at,
        )
    )


def downgrade() -> None:
    with op.batch_alter_table("tokens", schema=None) as batch_op:
        batch_op.drop_column("profile_error_at")
        batch_op.drop_column("profile_error_body")
        batch_op.drop_column("profile_error_code")
