# SPDX-License-Identifier: MIT
# atomio-bench (links the shared libatomio, public atomio.h only) and the bare baselines
# (no libatomio at all). Both share atomio_bench_util: argument parsing, the workload driver,
# histograms, JSON and the progress bar, so every runner does exactly the same work.
set(_b ${CMAKE_CURRENT_SOURCE_DIR})

add_library(atomio_bench_util STATIC ${_b}/args.c ${_b}/hist.c ${_b}/json.c ${_b}/workload.c
            ${_b}/progress.c)
target_include_directories(atomio_bench_util PUBLIC ${_b})
target_compile_definitions(atomio_bench_util PUBLIC _GNU_SOURCE)
target_compile_options(atomio_bench_util PRIVATE ${ATOMIO_WARNINGS})
target_link_libraries(atomio_bench_util PUBLIC Threads::Threads m)

add_executable(atomio-bench ${_b}/atomio-bench.c ${_b}/cmd_probe.c ${_b}/cmd_run.c
    ${_b}/cmd_compare.c ${_b}/cmd_store.c ${_b}/session.c ${_b}/runner.c ${_b}/report.c ${_b}/svg.c)
target_compile_options(atomio-bench PRIVATE ${ATOMIO_WARNINGS})
# `inspect` reads the store through the experimental atomio_store_inspect().
target_compile_definitions(atomio-bench PRIVATE ATOMIO_EXPERIMENTAL)
if(TARGET atomio)
  target_link_libraries(atomio-bench PRIVATE atomio atomio_bench_util)
else()
  target_link_libraries(atomio-bench PRIVATE atomio_static atomio_bench_util)
endif()
install(TARGETS atomio-bench RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

# Baselines: found by atomio-bench next to itself (build tree) or in libexec/atomio. They use
# liburing whenever its pkg-config module is found, whether or not the library has its submitter.
add_library(atomio_bench_baseline STATIC ${_b}/baseline_common.c)
target_compile_options(atomio_bench_baseline PRIVATE ${ATOMIO_WARNINGS})
target_link_libraries(atomio_bench_baseline PUBLIC atomio_bench_util)
if(ATOMIO_WITH_LIBURING_FOUND)
  target_compile_definitions(atomio_bench_baseline PUBLIC HAVE_LIBURING)
  target_link_libraries(atomio_bench_baseline PUBLIC PkgConfig::PC_liburing)
endif()
set(_baselines pwritev2 dblwr)
if(ATOMIO_WITH_LIBURING_FOUND)
  list(APPEND _baselines uring)
endif()
foreach(_k IN LISTS _baselines)
  add_executable(atomio-baseline-${_k} ${_b}/baseline_${_k}.c)
  target_compile_options(atomio-baseline-${_k} PRIVATE ${ATOMIO_WARNINGS})
  target_link_libraries(atomio-baseline-${_k} PRIVATE atomio_bench_baseline)
  add_dependencies(atomio-bench atomio-baseline-${_k})
  install(TARGETS atomio-baseline-${_k} RUNTIME DESTINATION ${CMAKE_INSTALL_LIBEXECDIR}/atomio)
endforeach()
