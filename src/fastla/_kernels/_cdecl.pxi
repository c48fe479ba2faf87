# Cython declarations of the C helpers shared by several kernel modules (textually
# included: ``include "_cdecl.pxi"``), so that each header's prototypes are written once.

cdef extern from "_stream.h" nogil:
    void fastla_stream_copy_f32(float* dst, const float* src, Py_ssize_t n)
    void fastla_stream_copy_f64(double* dst, const double* src, Py_ssize_t n)
    void fastla_sfence()
    void fastla_prefetch_rows(const void* p, Py_ssize_t nbytes)
    void* fastla_malloc64(size_t n)
    void fastla_free64(void* p)

