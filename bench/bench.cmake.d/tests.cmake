# SPDX-License-Identifier: MIT
# atomio-bench tests: they run the built programs the way a user does (exit codes, one-line
# errors, JSON/CSV/SVG parsed by python3's json/csv/xml modules).
#   bench_cli -- unit: parsing, --help/--version, output shapes; scratch file under $TMPDIR
#   bench_fs  -- fs: probe and a short compare --baselines on loop-mounted XFS and ext4 (root)
if(ATOMIO_BUILD_TESTS)
  enable_testing() # bench/ is added before tests/; harmless when the top level enables it too
  set(_t ${CMAKE_CURRENT_SOURCE_DIR}/tests)
  if(ATOMIO_PYTHON3)
    add_test(NAME bench_cli COMMAND ${ATOMIO_PYTHON3} ${_t}/test_cli.py
             $<TARGET_FILE_DIR:atomio-bench>)
    add_test(NAME bench_fs COMMAND ${ATOMIO_PYTHON3} ${_t}/test_fs.py
             $<TARGET_FILE_DIR:atomio-bench>)
  else()
    foreach(_n bench_cli bench_fs)
      add_test(NAME ${_n} COMMAND sh -c
               "echo 'skipped: python3 not installed (apt-get install python3)'; exit 77")
    endforeach()
  endif()
  set_tests_properties(bench_cli PROPERTIES LABELS unit TIMEOUT 120 SKIP_RETURN_CODE 77)
  set_tests_properties(bench_fs PROPERTIES LABELS fs TIMEOUT 300 SKIP_RETURN_CODE 77)
endif()
