"""Use cases shared by the command line and the web API.

Each module takes a ``Database`` (and the ``SecretBox`` where secrets are involved), does one
job in as few transactions as it needs, and raises ``AdesyncError`` subclasses whose message is
one sentence a person can act on.
"""
