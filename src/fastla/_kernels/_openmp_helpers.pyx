"""OpenMP facts of this build, as scikit-learn's ``_openmp_helpers`` reports them."""

cdef extern from *:
    """
    #ifdef _OPENMP
    #include <omp.h>
    #define FASTLA_OPENMP 1
    static int fastla_omp_max_threads(void) { return omp_get_max_threads(); }
    static int fastla_omp_num_procs(void) { return omp_get_num_procs(); }
    #else
    #define FASTLA_OPENMP 0
    static int fastla_omp_max_threads(void) { return 1; }
    static int fastla_omp_num_procs(void) { return 1; }
    #endif
    """
    int FASTLA_OPENMP
    int fastla_omp_max_threads() noexcept nogil
    int fastla_omp_num_procs() noexcept nogil


def openmp_enabled():
    """True when the Cython kernels were compiled with OpenMP."""
    return bool(FASTLA_OPENMP)


def omp_max_threads():
    """OpenMP's default team size (OMP_NUM_THREADS or the core count)."""
    return fastla_omp_max_threads()


def omp_num_procs():
    return fastla_omp_num_procs()
