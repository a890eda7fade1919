"""The RagkitError tree. Every message says what went wrong and what to do about it."""

from __future__ import annotations


class RagkitError(Exception):
    """Base class of every error ragkit raises on purpose (user errors, bad input, missing parts)."""


class ConfigError(RagkitError):
    """The configuration is invalid (unknown key, bad value, inconsistent sizes)."""


class UsageError(ConfigError):
    """An argument of the call is wrong (an unknown filter field, a bad --mode, an empty query); the CLI exits 2.

    A ConfigError too, so code that caught ConfigError for a bad filter still does."""


class SourceError(RagkitError):
    """A source path or URL cannot be read (missing, empty, unsupported)."""


class ParseError(RagkitError):
    """One document could not be parsed; ingest reports it and goes on with the rest."""


# the words of a NoDocumentation message: ingest tells it from a failure by them, also when a later run finds the
# stored failure of an untouched file
NO_DOCUMENTATION = "holds no documentation"


class NoDocumentation(ParseError):
    """A file of a kind ragkit reads that holds no text to read (a Perl module without POD): ingest leaves it out
    with one note for all such files, not as a failure. Make it with `for_file`."""

    @classmethod
    def for_file(cls, name: str, why: str) -> NoDocumentation:
        """ "NAME: holds no documentation (WHY)", the message `why_undocumented` reads back."""
        return cls(f"{name}: {NO_DOCUMENTATION} ({why})")


def why_undocumented(reason: str) -> str | None:
    """WHY of a stored NoDocumentation message ("Perl code without POD"); None for any other failure."""
    _, found, why = reason.rpartition(f": {NO_DOCUMENTATION} (")
    return why.removesuffix(")") if found else None


class KnowledgeBaseError(RagkitError):
    """The knowledge base is missing, locked, or does not match the configuration."""


class StorageError(KnowledgeBaseError):
    """The disk holding the knowledge base (or its database server's) is full or read-only; what was committed
    is kept."""


class ModelError(RagkitError):
    """A model cannot be found or loaded (missing package, bad path)."""


class DependencyError(RagkitError):
    """An optional dependency is missing; the message names the extra to install."""


class AccessError(RagkitError):
    """The reader may not do this: no principal given for an access-controlled knowledge base, a malformed
    principal or grant, or a write by a reader. Messages never name documents the reader cannot see."""


class Cancelled(RagkitError):
    """The caller stopped the work: an `on_text` callback raises it to stop generation at the next piece of
    text (a server does when its client disconnects); it propagates out of `ask` unchanged. `kb.ingest(cancel=
    event)` raises its subclass IngestCancelled, carrying the partial report, once the event is set."""


def driver_message(exc: BaseException) -> str:
    """A database error's own words on one line: the driver's message where SQLAlchemy wraps one (SQLAlchemy's
    text adds the statement, its parameters, which hold document text, and a web link)."""
    return " ".join(str(getattr(exc, "orig", None) or exc).split())
