# SPDX-License-Identifier: MIT
# Compile-time probes -> atomio_config.h (private, never installed). Runtime decides the rest.
include(CheckSymbolExists)
include(CheckCSourceCompiles)
set(CMAKE_REQUIRED_DEFINITIONS -D_GNU_SOURCE)
check_symbol_exists(pwritev2 "sys/uio.h" HAVE_PWRITEV2)
check_symbol_exists(statx "sys/stat.h" HAVE_STATX)
check_symbol_exists(RWF_ATOMIC "linux/fs.h" HAVE_LINUX_RWF_ATOMIC)
check_c_source_compiles("
#include <nmmintrin.h>
__attribute__((target(\"sse4.2\"))) unsigned f(unsigned c, unsigned long long v) { return (unsigned)_mm_crc32_u64(c, v); }
int main(void) { return (int)f(0, 1); }" HAVE_SSE42_INTRIN)
check_c_source_compiles("
#include <immintrin.h>
__attribute__((target(\"avx512f,vpclmulqdq\"))) long long f(long long a) {
  __m512i x = _mm512_set1_epi64(a);
  return _mm_cvtsi128_si64(_mm512_castsi512_si128(_mm512_clmulepi64_epi128(x, x, 0)));
}
int main(void) { return (int)f(1); }" HAVE_VPCLMUL_INTRIN)
unset(CMAKE_REQUIRED_DEFINITIONS)
# Each optional backend counts as present only once its source file exists.
if(ATOMIO_WITH_LIBURING_FOUND)
  set(HAVE_LIBURING ON)
endif()
set(HAVE_NUMA ${ATOMIO_WITH_NUMA_FOUND})
set(HAVE_JEMALLOC ${ATOMIO_WITH_JEMALLOC_FOUND})
configure_file(${CMAKE_CURRENT_LIST_DIR}/atomio_config.h.in ${PROJECT_BINARY_DIR}/atomio_config.h)
