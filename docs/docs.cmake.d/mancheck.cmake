# SPDX-License-Identifier: MIT
# CTest "mancheck": every function exported by the built libatomio.so has a man3 page, and every
# page renders without a groff warning. Reads the symbols from the binary, so it follows
# whatever actually lands in the library.
if(TARGET atomio AND COMMAND add_test)
  find_program(ATOMIO_NM nm)
  find_program(ATOMIO_GROFF groff)
  add_test(NAME mancheck
           COMMAND ${CMAKE_COMMAND}
                   -DLIB=$<TARGET_FILE:atomio>
                   -DMANDIR=${CMAKE_CURRENT_SOURCE_DIR}/man
                   -DNM=${ATOMIO_NM}
                   -DGROFF=${ATOMIO_GROFF}
                   -P ${CMAKE_CURRENT_SOURCE_DIR}/mancheck.cmake)
  set_tests_properties(mancheck PROPERTIES LABELS "docs;unit" TIMEOUT 60)
endif()
