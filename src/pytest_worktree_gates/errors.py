"""The errors that reach a user as one line, never as a traceback."""

from __future__ import annotations


class GatesError(Exception):
    """A user mistake or a missing prerequisite: one clear line naming the thing and the fix."""


class ConfigError(GatesError):
    """The configuration is malformed or invalid."""


class GitError(GatesError):
    """A git fact could not be read (no repo, unknown ref, ...)."""
