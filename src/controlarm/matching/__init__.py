"""The `matching` room: distances, exact strata, calipers, greedy and optimal k:1 and variable-ratio
matching, risk-set matching; balance diagnostics and the matching audit.

``match()`` is the front door; it dispatches to one module per method through an explicit
registry. ``risk_set_match()`` matches at each treated patient's landmark time among candidates
eligible at that time. ``balance_table()`` computes balance with MatchIt's conventions and never
warns; ``check_balance()`` warns about imbalanced covariates; ``love_plot()`` draws them.
"""

from ._api import match
from ._balance import balance_table, check_balance
from ._plot import love_plot
from ._result import MatchResult
from ._risk_set import risk_set_match

__all__ = ["match", "risk_set_match", "balance_table", "check_balance", "love_plot", "MatchResult"]
