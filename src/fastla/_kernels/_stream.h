/* Memory hints shared by the kernels.
 *
 * Streaming (non-temporal) stores for outputs that are written once and not read back
 * soon (a pairwise distance matrix larger than the caches, the k-means++ trial
 * distances): a cached store first reads each line it writes; a streaming store does
 * not, which cuts the memory traffic of such writes by up to half.
 *
 * fastla_stream_copy_f32 / _f64 (dst, src, n) copy n values; fastla_sfence() orders the
 * streamed stores before another thread reads them (call it once a thread's streaming
 * is done). SSE2 is part of every x86-64 build; elsewhere these are plain copies.
 */
#ifndef FASTLA_STREAM_H
#define FASTLA_STREAM_H

#include <stddef.h>
#include "_vec.h"

#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#include <stdint.h>

/* TYPE values, W per 16-byte vector, STORE / LOAD the SSE2 intrinsics */
#define FASTLA_STREAM_COPY(NAME, TYPE, W, STORE, LOAD)                               \
    static inline void NAME(TYPE* dst, const TYPE* src, ptrdiff_t n)                 \
    {                                                                                \
        ptrdiff_t i = 0;                                                             \
        while (i < n && ((uintptr_t)(dst + i) & 15)) {                               \
            dst[i] = src[i];                                                         \
            i++;                                                                     \
        }                                                                            \
        for (; i + (W) <= n; i += (W))                                               \
            STORE(dst + i, LOAD(src + i));                                           \
        for (; i < n; i++)                                                           \
            dst[i] = src[i];                                                         \
    }

FASTLA_STREAM_COPY(fastla_stream_copy_f64, double, 2, _mm_stream_pd, _mm_loadu_pd)
FASTLA_STREAM_COPY(fastla_stream_copy_f32, float, 4, _mm_stream_ps, _mm_loadu_ps)

static inline void fastla_sfence(void) { _mm_sfence(); }

#else

static inline void fastla_stream_copy_f64(double* dst, const double* src, ptrdiff_t n)
{
    memcpy(dst, src, (size_t)n * sizeof(double));
}

static inline void fastla_stream_copy_f32(float* dst, const float* src, ptrdiff_t n)
{
    memcpy(dst, src, (size_t)n * sizeof(float));
}

static inline void fastla_sfence(void) {}

#endif

/* fastla_prefetch_rows(p, nbytes): ask for the cache lines of [p, p + nbytes) ahead of
 * use (a hint: never faults; nothing on compilers without the builtin). */
#if defined(__GNUC__) || defined(__clang__)
static inline void fastla_prefetch_rows(const void* p, ptrdiff_t nbytes)
{
    const char* c = (const char*)p;
    ptrdiff_t o;
    for (o = 0; o < nbytes; o += 64)
        __builtin_prefetch(c + o);
}
#else
static inline void fastla_prefetch_rows(const void* p, ptrdiff_t nbytes) { (void)p; (void)nbytes; }
#endif

/* fastla_stream_vec(dst, x, nbytes): store the nbytes-byte vector x (16, 32 or 64: one
 * register of the build's ISA) to dst, which is 64-byte aligned, with a streaming store;
 * a plain store where the ISA has none of that width. */
#if defined(__AVX512F__)
#include <immintrin.h>
#define fastla_stream_vec(dst, x, nbytes)                                            \
    ((nbytes) == 64 ? _mm512_stream_si512((void*)(dst), (__m512i)(x))                 \
                    : (void)memcpy((dst), &(x), (nbytes)))
#elif defined(__AVX__)
#include <immintrin.h>
#define fastla_stream_vec(dst, x, nbytes)                                            \
    ((nbytes) == 32 ? _mm256_stream_si256((__m256i*)(void*)(dst), (__m256i)(x))       \
                    : (void)memcpy((dst), &(x), (nbytes)))
#elif defined(__SSE2__)
#define fastla_stream_vec(dst, x, nbytes)                                            \
    ((nbytes) == 16 ? _mm_stream_si128((__m128i*)(void*)(dst), (__m128i)(x))          \
                    : (void)memcpy((dst), &(x), (nbytes)))
#else
#define fastla_stream_vec(dst, x, nbytes) ((void)memcpy((dst), &(x), (nbytes)))
#endif

/* fastla_malloc64(n): n bytes starting on a 64-byte cache line (NULL when out of memory),
 * released by fastla_free64 (NULL allowed). malloc aligns to 16 bytes only (a large
 * block sits 16 bytes into a page), so a packed panel from malloc has every vector load
 * straddling two lines. Portable: the raw block is kept just below the returned one. */
#include <stdlib.h>
#include <stdint.h>

static inline void* fastla_malloc64(size_t n)
{
    unsigned char* raw = (unsigned char*)malloc(n + 64 + sizeof(void*));
    unsigned char* p;
    if (raw == NULL)
        return NULL;
    p = (unsigned char*)(((uintptr_t)raw + sizeof(void*) + 63) & ~(uintptr_t)63);
    memcpy(p - sizeof(void*), &raw, sizeof(void*));
    return p;
}

static inline void fastla_free64(void* p)
{
    void* raw;
    if (p == NULL)
        return;
    memcpy(&raw, (unsigned char*)p - sizeof(void*), sizeof(void*));
    free(raw);
}

#endif /* FASTLA_STREAM_H */
