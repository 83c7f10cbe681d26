"""Storage: SQLAlchemy tables, the database handle, secrets at rest and migrations."""

from adesync.store.database import Database

__all__ = ["Database"]
