"""edgesplit's analysis side: the cost model (``query``, ``sweep``, ``best_split``), reports and the CLI.

The cost-model API is re-exported here lazily (importing ``model`` stays cheap for the CLI of other
subcommands): ``from model import query, sweep, best_split, QueryResult``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

_API = ("BestSplit", "QueryResult", "SweepTable", "best_split", "query", "sweep")

if TYPE_CHECKING:  # pragma: no cover
    from model.api import BestSplit, QueryResult, SweepTable, best_split, query, sweep  # noqa: F401


def __getattr__(name: str) -> Any:
    if name in _API:
        from model import api

        return getattr(api, name)
    raise AttributeError(f"module 'model' has no attribute {name!r}")


__all__ = list(_API)
