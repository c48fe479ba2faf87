# Cython declarations of the C helpers shared by several kernel modules (textually
# included: ``include "_cdecl.pxi"``), so that each header's prototypes are written once.

cdef extern from "_stream.h" nogil:
    void fastla_stream_copy_f32(float* dst, const float* src, Py_ssize_t n)
    void fastla_stream_copy_f64(double* dst, const double* src, Py_ssize_t n)
    void fastla_sfence()
    void fastla_prefetch_rows(const void* p, Py_ssize_t nbytes)

cdef extern from "_gemm_tile.h" nogil:
    const int FASTLA_GEMM_OWN
    enum: FASTLA_GEMM_PAD  # spare rows of a packed buffer (and of padded norms)
    void fastla_gemm_pack_f32(const float* y, Py_ssize_t nt, Py_ssize_t d, float* yp)
    void fastla_gemm_pack_f64(const double* y, Py_ssize_t nt, Py_ssize_t d, double* yp)
    void fastla_gemm_tile_f32(const float* x, Py_ssize_t mt, Py_ssize_t d, const float* yp,
                              Py_ssize_t nt, float* c, Py_ssize_t ldc)
    void fastla_gemm_tile_f64(const double* x, Py_ssize_t mt, Py_ssize_t d, const double* yp,
                              Py_ssize_t nt, double* c, Py_ssize_t ldc)
    void fastla_gemm_tile_f32_ex(const float* x, Py_ssize_t mt, Py_ssize_t d,
                                 const float* yp, Py_ssize_t nt, float* c, Py_ssize_t ldc,
                                 float alpha, const float* bias)
    void fastla_gemm_tile_f64_ex(const double* x, Py_ssize_t mt, Py_ssize_t d,
                                 const double* yp, Py_ssize_t nt, double* c, Py_ssize_t ldc,
                                 double alpha, const double* bias)
    void fastla_gemm_tile_f32_dist(const float* x, Py_ssize_t mt, Py_ssize_t d,
                                   const float* yp, Py_ssize_t nt, float* c, Py_ssize_t ldc,
                                   const float* xn, const float* yn, float thr, int root,
                                   unsigned char* low_rows)
    void fastla_gemm_tile_f64_dist(const double* x, Py_ssize_t mt, Py_ssize_t d,
                                   const double* yp, Py_ssize_t nt, double* c,
                                   Py_ssize_t ldc, const double* xn, const double* yn,
                                   double thr, int root, unsigned char* low_rows)
    void fastla_gemm_labels_f32(const float* xp, Py_ssize_t d, const float* c,
                                const float* cb, Py_ssize_t k, Py_ssize_t lo, Py_ssize_t hi,
                                int* labels, const float* xrows)
    void fastla_gemm_labels_f64(const double* xp, Py_ssize_t d, const double* c,
                                const double* cb, Py_ssize_t k, Py_ssize_t lo, Py_ssize_t hi,
                                int* labels, const double* xrows)
