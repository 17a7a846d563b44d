"""Small statistics the benchmarks share."""
from __future__ import annotations

import math


def sign_test(gained: int, lost: int) -> float:
    """Two-sided sign test p-value of `gained` against `lost` items (the items on which two variants agree say
    nothing about which is better)."""
    n = gained + lost
    tail = sum(math.comb(n, k) for k in range(min(gained, lost) + 1)) / 2 ** n if n else 1.0
    return min(1.0, 2 * tail)
