# SPDX-License-Identifier: MIT
# The installed header, library, CMake package and pkg-config file work for a downstream project.
if(ATOMIO_BUILD_SHARED AND NOT ATOMIO_SANITIZED)
  add_test(NAME install_consumer COMMAND ${CMAKE_COMMAND}
    -DBUILD_DIR=${PROJECT_BINARY_DIR} -DSRC_DIR=${CMAKE_CURRENT_SOURCE_DIR}/install
    -DWORK_DIR=${CMAKE_CURRENT_BINARY_DIR}/install-check -P ${CMAKE_CURRENT_SOURCE_DIR}/install/check.cmake)
  set_tests_properties(install_consumer PROPERTIES LABELS unit TIMEOUT 120)
endif()
