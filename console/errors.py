"""The console's own errors, which its handlers answer (400, 404): anything else is a bug, answered 500 and
logged, never dressed up as bad input."""

from __future__ import annotations


class BadInput(ValueError):
    """A parameter or form field that cannot be used; the message says which and why (shown to the viewer)."""


class NotFound(LookupError):
    """No such person or team (for a viewer who may see it)."""


class NotReady(Exception):
    """What a page needs is not read yet (the console has just started and Redis or MySQL is away)."""
