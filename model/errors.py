"""Re-export of the one user-error type (defined in golden, the lowest layer)."""

from golden.errors import UserError

__all__ = ["UserError"]
