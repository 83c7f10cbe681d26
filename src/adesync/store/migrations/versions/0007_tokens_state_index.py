"""tokens: an index by stored state and name, for the alert banner every console page shows

The banner counts the tokens in error and names the first five by name. Without the index that
read visits every token (2,000 in the API benchmark) on each page view; with it, it reads the
index entries of the tokens in error and five rows.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_tokens_state", "tokens", ["state", "name"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_tokens_state", table_name="tokens")
