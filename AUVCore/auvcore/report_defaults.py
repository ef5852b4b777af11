"""The cohort report's defaults, apart from :mod:`auvcore.report` (matplotlib, pandas) so ``auv report --help`` can show them.

The keep fraction's default is the quantile filter's, :data:`auvcore.curation.DEFAULT_KEEP`.
"""

from __future__ import annotations

#: How many of the highest-AUV cases the table shows.
DEFAULT_TOP = 12
#: How many of the most suspect structures the report lists.
DEFAULT_SUSPECTS = 20
