"""enrollment: MDM enrollment events, UDID to serial, enrollment URL probes, device columns

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from adesync.store.types import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "enrollment_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("serial_number", sa.String(length=64), nullable=True),
        sa.Column("udid", sa.String(length=64), nullable=True),
        sa.Column("event", sa.String(length=16), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("event_key", sa.String(length=64), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_enrollment_events")),
        sa.UniqueConstraint("event_key", name=op.f("uq_enrollment_events_event_key")),
    )
    with op.batch_alter_table("enrollment_events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_enrollment_events_serial", ["serial_number", "event", "at"], unique=False
        )
        batch_op.create_index("ix_enrollment_events_udid", ["udid"], unique=False)
        batch_op.create_index("ix_enrollment_events_received", ["received_at"], unique=False)
    op.create_table(
        "mdm_devices",
        sa.Column("udid", sa.String(length=64), nullable=False),
        sa.Column("serial_number", sa.String(length=64), nullable=False),
        sa.Column("first_seen_at", UTCDateTime(), nullable=False),
        sa.Column("last_seen_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("udid", name=op.f("pk_mdm_devices")),
    )
    with op.batch_alter_table("mdm_devices", schema=None) as batch_op:
        batch_op.create_index("ix_mdm_devices_serial_number", ["serial_number"], unique=False)
    op.create_table(
        "enrollment_url_probes",
        sa.Column("probe_key", sa.String(length=64), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("probed_at", UTCDateTime(), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error_kind", sa.String(length=16), nullable=True),
        sa.Column("error", sa.String(length=255), nullable=True),
        sa.Column("failing_since", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("probe_key", name=op.f("pk_enrollment_url_probes")),
    )
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.add_column(sa.Column("enrollment_state", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("mdm_authenticated_at", UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("mdm_enrolled_at", UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("mdm_checked_out_at", UTCDateTime(), nullable=True))
        batch_op.create_index(
            "ix_devices_enrollment_state", ["enrollment_state", "token_id"], unique=False
        )
    # Devices synced before this revision have no events yet: their state follows Apple's
    # profile status alone.
    op.execute(
        "UPDATE devices SET enrollment_state = CASE WHEN profile_status = 'pushed' "
        "THEN 'pushed' ELSE 'not_contacted' END"
    )


def downgrade() -> None:
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.drop_index("ix_devices_enrollment_state")
        batch_op.drop_column("mdm_checked_out_at")
        batch_op.drop_column("mdm_enrolled_at")
        batch_op.drop_column("mdm_authenticated_at")
        batch_op.drop_column("enrollment_state")
    op.drop_table("enrollment_url_probes")
    with op.batch_alter_table("mdm_devices", schema=None) as batch_op:
        batch_op.drop_index("ix_mdm_devices_serial_number")
    op.drop_table("mdm_devices")
    with op.batch_alter_table("enrollment_events", schema=None) as batch_op:
        batch_op.drop_index("ix_enrollment_events_received")
        batch_op.drop_index("ix_enrollment_events_udid")
        batch_op.drop_index("ix_enrollment_events_serial")
    op.drop_table("enrollment_events")
