"""Errors the CLI turns into one-line messages, no traceback: exit code ``exit_code`` (1; 2 for usage errors)."""

from __future__ import annotations


class SdapError(Exception):
    """Base class: the message is shown to the user as it is, on one line."""

    exit_code = 1


class InputError(SdapError):
    """An input file or folder is missing, unreadable or not a supported image."""


class OutputError(SdapError):
    """An output cannot be written (exists, folder not writable, unknown format)."""


class CheckpointError(SdapError):
    """A weights file is missing, corrupt, or not a DBSNl checkpoint we know."""


class ConfigError(SdapError):
    """A configuration file or option combination is invalid: a usage error (exit code 2)."""

    exit_code = 2


class OutOfMemory(SdapError):
    """An image could not be denoised in the memory there is, even at the smallest tile."""


def first_line(e: BaseException, limit: int = 200) -> str:
    """The first line of an exception's message, at most ``limit`` characters; its type's name when it
    has no message.

        >>> first_line(ValueError("bad value\\nmore detail")), first_line(KeyError())
        ('bad value', 'KeyError')
    """
    text = str(e)
    return text.splitlines()[0][:limit] if text.strip() else type(e).__name__


def one_line(msg: object) -> str:
    """``msg`` (text or bytes) with its whitespace runs, newlines included, collapsed to single spaces."""
    if isinstance(msg, bytes):
        msg = msg.decode("utf-8", "replace")
    return " ".join(str(msg).split())
