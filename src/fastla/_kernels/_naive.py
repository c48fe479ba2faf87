"""The naive reference loops: the textbook Python versions fastla replaces.

They are the correctness oracle in the tests and the baseline the benchmarks measure
speedups against. They are deliberately plain Python (pair by pair, pixel by pixel,
rating by rating) and are registered as the ``python`` backend of each operation.
"""

import math

import numpy as np
