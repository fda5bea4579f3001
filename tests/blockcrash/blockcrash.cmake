# SPDX-License-Identifier: MIT
# Block-level crash harness (docs/reliability.md): a FUSE recorder
# under a loop device logs every write and flush of a real XFS or ext4 while the workload
# writes through libatomio; the checker replays crash states from the log, mounts them, runs
# recovery and checks every page. Included from tests/CMakeLists.txt.
set(_bc ${CMAKE_CURRENT_LIST_DIR})
pkg_check_modules(FUSE3 QUIET IMPORTED_TARGET fuse3)
if(NOT FUSE3_FOUND)
  message(${ATOMIO_MISSING_TEST_TOOL}
    "libfuse3-dev not found: the blockcrash test is registered as a skip (scripts/deps.sh)")
  add_test(NAME blockcrash COMMAND sh -c
    "echo 'blockcrash skipped: libfuse3-dev was missing at configure time (scripts/deps.sh installs it)'; exit 77")
  set_tests_properties(blockcrash PROPERTIES LABELS "root;long;blockcrash" SKIP_RETURN_CODE 77)
  return()
endif()

add_executable(blockcrash-recorder ${_bc}/recorder.c)
target_compile_definitions(blockcrash-recorder PRIVATE _GNU_SOURCE)
target_compile_options(blockcrash-recorder PRIVATE ${ATOMIO_WARNINGS})
target_link_libraries(blockcrash-recorder PRIVATE PkgConfig::FUSE3)

add_executable(blockcrash-workload ${_bc}/workload.c ${_bc}/bc_lib.c)
target_compile_definitions(blockcrash-workload PRIVATE _GNU_SOURCE)
target_compile_options(blockcrash-workload PRIVATE ${ATOMIO_WARNINGS})
target_link_libraries(blockcrash-workload PRIVATE atomio_testing Threads::Threads)

add_executable(blockcrash-check ${_bc}/check.c ${_bc}/bc_lib.c)
target_compile_definitions(blockcrash-check PRIVATE _GNU_SOURCE)
target_compile_options(blockcrash-check PRIVATE ${ATOMIO_WARNINGS})
target_link_libraries(blockcrash-check PRIVATE atomio_testing)

# CI size: ATOMIO_BLOCKCRASH_STATES (default 3600 over all scenarios) and a 10-minute budget.
add_test(NAME blockcrash COMMAND ${_bc}/run.sh --bin-dir ${CMAKE_CURRENT_BINARY_DIR}
         --results ${CMAKE_CURRENT_BINARY_DIR}/blockcrash-results)
# Two worker processes: tell ctest -j so it does not stack other suites on top.
set_tests_properties(blockcrash PROPERTIES LABELS "root;long;blockcrash" TIMEOUT 900
                     SKIP_RETURN_CODE 77 PROCESSORS 2
                     # in sanitizer builds: the harness's own short-lived processes are not what
                     # the leak check is for (the library's suites are)
                     ENVIRONMENT "ASAN_OPTIONS=detect_leaks=0")

# Crash states as images for an engine's own checks (bench/engines/postgresql/blockcrash.sh):
# the checker's generator and image builder, compiled in from check.c.
add_executable(blockcrash-state ${_bc}/state.c ${_bc}/bc_lib.c)
target_compile_definitions(blockcrash-state PRIVATE _GNU_SOURCE)
target_compile_options(blockcrash-state PRIVATE ${ATOMIO_WARNINGS})
target_link_libraries(blockcrash-state PRIVATE atomio_testing)
