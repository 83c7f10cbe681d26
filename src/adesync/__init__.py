"""adesync keeps Apple Automated Device Enrollment (ADE) tokens working."""

__version__ = "0.1.0"
