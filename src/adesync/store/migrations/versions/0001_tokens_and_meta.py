"""tokens and meta

Revision ID: 0001
Revises:
Create Date: 2026-11-25 19:37:29.829174
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from adesync.store.types import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "adesync_meta",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_adesync_meta")),
    )
    op.create_table(
        "tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("token_type", sa.String(length=8), server_default="abm", nullable=False),
        sa.Column("dep_url", sa.String(length=500), nullable=False),
        sa.Column("oauth_credentials", sa.LargeBinary(), nullable=True),
        sa.Column("access_token_expiry", UTCDateTime(), nullable=True),
        sa.Column("token_added_at", UTCDateTime(), nullable=True),
        sa.Column("token_renewed_at", UTCDateTime(), nullable=True),
        sa.Column("server_uuid", sa.String(length=64), nullable=True),
        sa.Column("server_name", sa.String(length=255), nullable=True),
        sa.Column("org_name", sa.String(length=255), nullable=True),
        sa.Column("org_email", sa.String(length=255), nullable=True),
        sa.Column("org_phone", sa.String(length=64), nullable=True),
        sa.Column("org_address", sa.Text(), nullable=True),
        sa.Column("org_id", sa.String(length=64), nullable=True),
        sa.Column("org_id_hash", sa.String(length=128), nullable=True),
        sa.Column("org_type", sa.String(length=16), nullable=True),
        sa.Column("org_version", sa.String(length=8), nullable=True),
        sa.Column("admin_id", sa.String(length=255), nullable=True),
        sa.Column("identity_verified_at", UTCDateTime(), nullable=True),
        sa.Column("pending_private_key", sa.LargeBinary(), nullable=True),
        sa.Column("pending_certificates", sa.Text(), nullable=True),
        sa.Column("pending_created_at", UTCDateTime(), nullable=True),
        sa.Column("active_private_key", sa.LargeBinary(), nullable=True),
        sa.Column("active_certificates", sa.Text(), nullable=True),
        sa.Column("active_since", UTCDateTime(), nullable=True),
        sa.Column("cursor", sa.Text(), nullable=True),
        sa.Column("cursor_issued_at", UTCDateTime(), nullable=True),
        sa.Column("last_full_fetch_at", UTCDateTime(), nullable=True),
        sa.Column("last_sync_at", UTCDateTime(), nullable=True),
        sa.Column("last_successful_sync_at", UTCDateTime(), nullable=True),
        sa.Column("last_manual_sync_at", UTCDateTime(), nullable=True),
        sa.Column("next_sync_at", UTCDateTime(), nullable=True),
        sa.Column("default_profile_uuid", sa.String(length=64), nullable=True),
        sa.Column("lease_owner", sa.String(length=128), nullable=True),
        sa.Column("lease_expires_at", UTCDateTime(), nullable=True),
        sa.Column("last_error_code", sa.String(length=64), nullable=True),
        sa.Column("last_error_status", sa.Integer(), nullable=True),
        sa.Column("last_error_body", sa.Text(), nullable=True),
        sa.Column("last_error_at", UTCDateTime(), nullable=True),
        sa.Column("consecutive_failures", sa.Integer(), server_default="0", nullable=False),
        sa.Column("terms_not_accepted", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("token_rejected", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("access_denied", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=True),
        sa.Column("state_reason", sa.String(length=64), nullable=True),
        sa.Column("state_changed_at", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tokens")),
        sa.UniqueConstraint("name", name=op.f("uq_tokens_name")),
    )
    with op.batch_alter_table("tokens", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_tokens_next_sync_at"), ["next_sync_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_tokens_server_uuid"), ["server_uuid"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tokens_server_uuid"))
        batch_op.drop_index(batch_op.f("ix_tokens_next_sync_at"))

    op.drop_table("tokens")
    op.drop_table("adesync_meta")
