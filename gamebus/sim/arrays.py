"""The numpy array types the simulator's vectorised modules annotate with.

The engine steps every player of every match as columns of arrays; these
names say which dtype a column holds, once for all of its modules.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["BoolArray", "FloatArray", "IntArray"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
