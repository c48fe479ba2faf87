# Cython declarations of _gemm_tile.h, the tile kernels shared by _cy_distances and
# _cy_kmeans, and their float/double dispatch (textually included, after the module's
# ``ctypedef fused floating``: ``include "_gemm_tile.pxi"``).

cdef extern from "_gemm_tile.h" nogil:
    const int FASTLA_GEMM_OWN
    enum: FASTLA_GEMM_PAD  # spare rows of a packed buffer (and of padded norms)
    enum: FASTLA_GEMM_NR_F32, FASTLA_GEMM_NR_F64  # points per panel
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
                                   float gamma, unsigned char* low_rows)
    void fastla_gemm_tile_f64_dist(const double* x, Py_ssize_t mt, Py_ssize_t d,
                                   const double* yp, Py_ssize_t nt, double* c,
                                   Py_ssize_t ldc, const double* xn, const double* yn,
                                   double thr, int root, double gamma,
                                   unsigned char* low_rows)
    Py_ssize_t fastla_gemm_labels_f32(const float* xp, Py_ssize_t d, const float* c,
                                      const float* cb, Py_ssize_t k, Py_ssize_t lo, Py_ssize_t hi,
                                      int* labels, const float* xrows)
    Py_ssize_t fastla_gemm_labels_f64(const double* xp, Py_ssize_t d, const double* c,
                                      const double* cb, Py_ssize_t k, Py_ssize_t lo, Py_ssize_t hi,
                                      int* labels, const double* xrows)


cdef inline void _pack(const floating* a, Py_ssize_t m, Py_ssize_t d,
                       floating* ap) noexcept nogil:
    """m rows of a (m, d) into the tile kernel's panels (fastla_gemm_pack_*)."""
    if floating is float:
        fastla_gemm_pack_f32(a, m, d, ap)
    else:
        fastla_gemm_pack_f64(a, m, d, ap)
