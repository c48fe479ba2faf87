"""CPU features at run time (cpuid through the compiler's builtins).

Used to choose which ISA variant of a hot kernel module to import. On compilers or
architectures without ``__builtin_cpu_supports`` every feature reads as absent, so
the baseline module is used.
"""

cdef extern from *:
    """
    #if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
    #define FASTLA_HAVE_CPU_SUPPORTS 1
    static int fastla_cpu_has(int which) {
        __builtin_cpu_init();
        switch (which) {
            case 0: return __builtin_cpu_supports("sse4.2");
            case 1: return __builtin_cpu_supports("avx");
            case 2: return __builtin_cpu_supports("avx2");
            case 3: return __builtin_cpu_supports("fma");
            case 4: return __builtin_cpu_supports("bmi2");
            case 5: return __builtin_cpu_supports("avx512f");
            case 6: return __builtin_cpu_supports("avx512bw");
            case 7: return __builtin_cpu_supports("avx512cd");
            case 8: return __builtin_cpu_supports("avx512dq");
            case 9: return __builtin_cpu_supports("avx512vl");
            default: return 0;
        }
    }
    #elif defined(_MSC_VER) && (defined(_M_X64) || defined(_M_IX86))
    #include <intrin.h>
    #include <immintrin.h>
    #define FASTLA_HAVE_CPU_SUPPORTS 1
    static int fastla_cpu_has(int which) {
        int r1[4], r7[4];
        unsigned long long xcr0 = 0;
        __cpuid(r1, 1);
        __cpuidex(r7, 7, 0);
        if (r1[2] & (1 << 27)) xcr0 = _xgetbv(0);
        int ymm = (xcr0 & 6) == 6, zmm = (xcr0 & 0xe6) == 0xe6;
        switch (which) {
            case 0: return (r1[2] >> 20) & 1;
            case 1: return ((r1[2] >> 28) & 1) && ymm;
            case 2: return ((r7[1] >> 5) & 1) && ymm;
            case 3: return ((r1[2] >> 12) & 1) && ymm;
            case 4: return (r7[1] >> 8) & 1;
            case 5: return ((r7[1] >> 16) & 1) && zmm;
            case 6: return ((r7[1] >> 30) & 1) && zmm;
            case 7: return ((r7[1] >> 28) & 1) && zmm;
            case 8: return ((r7[1] >> 17) & 1) && zmm;
            case 9: return ((r7[1] >> 31) & 1) && zmm;
            default: return 0;
        }
    }
    #else
    #define FASTLA_HAVE_CPU_SUPPORTS 0
    static int fastla_cpu_has(int which) { (void)which; return 0; }
    #endif
    """
    int FASTLA_HAVE_CPU_SUPPORTS
    int fastla_cpu_has(int which) noexcept nogil

_NAMES = ("sse4.2", "avx", "avx2", "fma", "bmi2",
          "avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl")


def cpu_features():
    """Dict of feature name -> bool for the features the variants need."""
    return {name: bool(fastla_cpu_has(i)) for i, name in enumerate(_NAMES)}


def detection_available():
    return bool(FASTLA_HAVE_CPU_SUPPORTS)
