"""Command groups of the ``adesync`` CLI; :mod:`adesync.cli` assembles them."""
