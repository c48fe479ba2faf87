/* Vector types shared by the kernels' C headers (_kmeans_vec.h, _direct.h, _gemm_tile.h;
 * _stream.h includes it for the MSVC inline spelling only).
 *
 * GCC/Clang vector extensions, one hardware register wide for the build's ISA level:
 * 16 bytes on the baseline wheel (SSE2), 32 on v3 (AVX2), 64 on v4 (AVX-512). Wider
 * generic vectors would be lowered to scalar code, so each ISA build gets its own width.
 * FASTLA_VBYTES is the width; fastla_vf32 / fastla_vf64 hold values, fastla_vi32 /
 * fastla_vi64 the comparison masks of the same lane width. Other compilers define
 * nothing here and the headers use their scalar loops.
 */
#ifndef FASTLA_VEC_H
#define FASTLA_VEC_H

/* C89-era MSVC spells C's inline __inline; every header includes this one first */
#if defined(_MSC_VER) && !defined(__cplusplus) && !defined(inline)
#define inline __inline
#endif

#if defined(__GNUC__) || defined(__clang__)

#if defined(__AVX512F__)
#define FASTLA_VBYTES 64
#elif defined(__AVX__)
#define FASTLA_VBYTES 32
#else
#define FASTLA_VBYTES 16
#endif

typedef float fastla_vf32 __attribute__((vector_size(FASTLA_VBYTES)));
typedef int fastla_vi32 __attribute__((vector_size(FASTLA_VBYTES)));
typedef double fastla_vf64 __attribute__((vector_size(FASTLA_VBYTES)));
typedef long long fastla_vi64 __attribute__((vector_size(FASTLA_VBYTES)));

#endif

#endif /* FASTLA_VEC_H */
