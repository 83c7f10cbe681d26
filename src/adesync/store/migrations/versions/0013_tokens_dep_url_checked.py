"""tokens: whether every connection to the token's Apple URL is checked

A token created through the API or the console may name only Apple's host or a host that
``ADESYNC_ALLOWED_DEP_HOSTS`` allows, and each connection is checked against the address the
name resolves to. Tokens stored before this revision were set up by an administrator (the CLI's
``--dep-url`` or an earlier console), so they start unchecked and keep working as they did.

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tokens", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("dep_url_checked", sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("tokens", schema=None) as batch_op:
        batch_op.drop_column("dep_url_checked")
