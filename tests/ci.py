"""Skips that CI must not take: a result CI makes is missing there, so the check fails instead of skipping."""

import os

import pytest


def in_ci() -> bool:
    """True under CI (env ``CI`` set to a true value, as ``.ci/run`` does)."""
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def skip_unless_ci(reason: str, ci_makes_it: bool = True) -> None:
    """Skip locally (``reason`` says which command makes the missing result); under CI fail when ``ci_makes_it``
    (``.ci/run`` produces that result before ``make test``), so no comparison CI can run is skipped there."""
    if ci_makes_it and in_ci():
        pytest.fail(f"CI: {reason}", pytrace=False)
    pytest.skip(reason)
