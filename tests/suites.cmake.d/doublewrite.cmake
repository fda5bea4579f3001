# SPDX-License-Identifier: MIT
# Doublewrite store: checksum, on-disk format, protocol, recovery, crash simulation.
atomio_add_test(test_crc32c SOURCES test_crc32c.c LABELS unit TIMEOUT 30)
atomio_add_test(test_dw_format SOURCES test_dw_format.c LABELS unit TIMEOUT 60)
atomio_add_test(test_doublewrite SOURCES test_doublewrite.c LABELS unit TIMEOUT 120)
atomio_add_test(test_crash SOURCES test_crash.c sim_device.c t_engine.c LABELS crash unit TIMEOUT 600)
atomio_add_test(test_recovery SOURCES test_recovery.c LABELS unit TIMEOUT 60)
atomio_add_test(test_dw_fs SOURCES test_dw_fs.c LABELS fs TIMEOUT 240)
# The fuzz seeds double as a cross-check: they are written by an independent encoder
# (tests/fuzz/make_corpus.py, from docs/format.md) and test_dw_format decodes them.
target_compile_definitions(test_dw_format PRIVATE
  ATOMIO_FUZZ_CORPUS="${CMAKE_CURRENT_SOURCE_DIR}/fuzz/corpus")

# libFuzzer target over the store reader (clang only):
#   CC=clang cmake -S . -B build-fuzz -DATOMIO_BUILD_FUZZ=ON && cmake --build build-fuzz
#   ctest --test-dir build-fuzz -L fuzz              (short run, part of CI)
#   build-fuzz/tests/fuzz_store build-fuzz/tests/fuzz_corpus tests/fuzz/corpus   (long run)
option(ATOMIO_BUILD_FUZZ "Build the libFuzzer targets (needs clang and libclang-rt-dev)" OFF)
if(ATOMIO_BUILD_FUZZ)
  if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
    message(WARNING "ATOMIO_BUILD_FUZZ needs clang (configure with CC=clang); fuzz_store skipped")
  else()
    add_executable(fuzz_store ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_store.c ${ATOMIO_SOURCES})
    target_include_directories(fuzz_store PRIVATE ${PROJECT_SOURCE_DIR}/include
      ${PROJECT_SOURCE_DIR}/libatomio ${PROJECT_BINARY_DIR})
    target_compile_definitions(fuzz_store PRIVATE _GNU_SOURCE ATOMIO_STATIC_NO_EXPORT ATOMIO_EXPERIMENTAL)
    target_compile_options(fuzz_store PRIVATE ${ATOMIO_WARNINGS} -g -O1
      -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined)
    target_link_options(fuzz_store PRIVATE -fsanitize=fuzzer,address,undefined)
    target_link_libraries(fuzz_store PRIVATE ${ATOMIO_DEP_TARGETS})
    file(MAKE_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR}/fuzz_corpus)
    add_test(NAME fuzz_store_short
      COMMAND fuzz_store -runs=30000 -max_total_time=60 -timeout=10 -rss_limit_mb=2048
              ${CMAKE_CURRENT_BINARY_DIR}/fuzz_corpus ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/corpus)
    set_tests_properties(fuzz_store_short PROPERTIES LABELS fuzz TIMEOUT 180)
  endif()
endif()

# atomio-bench inspect/recover (bench/cmd_store.c uses only atomio.h; linked here directly).
atomio_add_test(test_bench_store SOURCES test_bench_store.c ${PROJECT_SOURCE_DIR}/bench/cmd_store.c
                LABELS unit TIMEOUT 60)
