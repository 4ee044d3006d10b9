"""Exception types shared across defocuskit.

Every error raised on bad user input derives from :class:`DefocusKitError`, so the CLI
can turn it into one clear line and a non-zero exit without a traceback.
"""

__all__ = ["DefocusKitError", "SourceError", "SchemaError", "ConfigError", "DataError"]


class DefocusKitError(Exception):
    """Base class for errors caused by user input (files, options, data)."""


class SourceError(DefocusKitError):
    """A dataset source could not be read: missing, corrupt or unexpected files."""


class SchemaError(DefocusKitError):
    """A stored dataset does not match the schema this version reads."""


class ConfigError(DefocusKitError):
    """A configuration value or option is invalid."""


class DataError(DefocusKitError):
    """Stored data cannot be trusted: a checksum mismatch, a missing shard, a skipped sample."""
