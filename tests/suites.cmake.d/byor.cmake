# SPDX-License-Identifier: MIT
# Bring-your-own-ring (issue 9). The engine-style ring in the tests is liburing's; the library
# side needs only <linux/io_uring.h>. Without liburing the ring tests skip with the reason.
set(_byor_libs)
set(_byor_defs)
if(TARGET PkgConfig::PC_liburing)
  set(_byor_libs PkgConfig::PC_liburing)
  set(_byor_defs T_HAVE_LIBURING)
endif()
atomio_add_test(test_byor SOURCES test_byor.c LABELS fs TIMEOUT 120 LIBS ${_byor_libs})
target_compile_definitions(test_byor PRIVATE ${_byor_defs})
atomio_add_test(test_byor_dw SOURCES test_byor_dw.c t_engine.c LABELS fs TIMEOUT 180
                LIBS ${_byor_libs})
target_compile_definitions(test_byor_dw PRIVATE ${_byor_defs})
# No root needed (scratch directory, page cache): runs in the unit and TSan passes too.
atomio_add_test(test_byor_threads SOURCES test_byor_threads.c t_engine.c LABELS "unit;threads"
                TIMEOUT 120)
