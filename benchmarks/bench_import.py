"""Import time and first-call (JIT) time, each in a fresh interpreter."""


class Import:
    timeout = 120

    def timeraw_import_fastla(self):
        return "import fastla"

    def timeraw_first_call_cython(self):
        return ("fastla.pairwise_distances(X, backend='cython')",
                "import numpy as np, fastla; X = np.ones((50, 8))")

    def timeraw_first_call_numba(self):
        return ("fastla.pairwise_distances(X, backend='numba')",
                "import numpy as np, fastla; X = np.ones((50, 8))")
