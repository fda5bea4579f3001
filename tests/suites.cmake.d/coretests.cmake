# SPDX-License-Identifier: MIT
# Core suites (issue 2, item 8): option ABI, probe parsing, path selection, bad input, exports
# run everywhere (unit); real filesystems and real faults need root for loop mounts (fs) and
# skip with a printed reason otherwise. test_badinput is both: its read-only-filesystem case
# mounts a tmpfs as root and uses a 0444 file otherwise.
atomio_add_test(test_opts_abi SOURCES test_opts_abi.c LABELS unit TIMEOUT 30)
atomio_add_test(test_caps SOURCES test_caps.c LABELS unit TIMEOUT 30)
atomio_add_test(test_select SOURCES test_select.c LABELS unit TIMEOUT 30)
atomio_add_test(test_badinput SOURCES test_badinput.c LABELS "unit;fs" TIMEOUT 60)
atomio_add_test(test_fs SOURCES test_fs.c LABELS fs TIMEOUT 120)
atomio_add_test(test_faults SOURCES test_faults.c LABELS fs TIMEOUT 120)

# The shared library as users get it: its ELF dynamic symbols, SONAME and version nodes.
if(TARGET atomio)
  atomio_add_test(test_exports SOURCES test_exports.c LABELS unit TIMEOUT 30
                  LIBS ${CMAKE_DL_LIBS})
  target_compile_definitions(test_exports PRIVATE
    ATOMIO_SHARED_LIB="$<TARGET_FILE:atomio>"
    ATOMIO_MAP_FILE="${PROJECT_SOURCE_DIR}/libatomio/atomio.map"
    ATOMIO_INCLUDE_DIR="${PROJECT_SOURCE_DIR}/include")
  add_dependencies(test_exports atomio)
endif()
