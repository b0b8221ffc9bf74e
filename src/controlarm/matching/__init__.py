"""The `matching` room: distances, exact strata, calipers and k:1 matching; balance diagnostics.

``match()`` is the front door; it dispatches to one module per method through an explicit
registry. ``balance_table()`` computes balance with MatchIt's conventions and never warns;
``check_balance()`` warns about imbalanced covariates.
"""

from ._api import match
from ._balance import balance_table, check_balance
from ._result import MatchResult

__all__ = ["match", "balance_table", "check_balance", "MatchResult"]
