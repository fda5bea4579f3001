# SPDX-License-Identifier: MIT
# Install the build into a temp prefix, build a consumer with find_package(atomio) and with
# pkg-config, run both. Variables: BUILD_DIR, SRC_DIR, WORK_DIR.
file(REMOVE_RECURSE ${WORK_DIR})
execute_process(COMMAND ${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${WORK_DIR}/prefix
                RESULT_VARIABLE rc OUTPUT_QUIET)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "cmake --install failed: ${rc}")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} -S ${SRC_DIR} -B ${WORK_DIR}/consumer
                -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "consumer configure (find_package(atomio)) failed: ${rc}")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} --build ${WORK_DIR}/consumer RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "consumer build failed: ${rc}")
endif()
file(GLOB _libdirs ${WORK_DIR}/prefix/lib*)
execute_process(COMMAND ${CMAKE_COMMAND} -E env "LD_LIBRARY_PATH=${_libdirs}" ${WORK_DIR}/consumer/c
                RESULT_VARIABLE rc OUTPUT_VARIABLE out)
if(NOT rc EQUAL 0 OR NOT out MATCHES "^[0-9]+\\.[0-9]+\\.[0-9]+")
  message(FATAL_ERROR "consumer run failed (${rc}): ${out}")
endif()
# pkg-config, relocated: the .pc derives its prefix from its own location.
file(GLOB_RECURSE _pc ${WORK_DIR}/prefix/atomio.pc)
get_filename_component(_pcdir "${_pc}" DIRECTORY)
execute_process(COMMAND ${CMAKE_COMMAND} -E env "PKG_CONFIG_PATH=${_pcdir}" pkg-config --cflags --libs atomio
                RESULT_VARIABLE rc OUTPUT_VARIABLE flags OUTPUT_STRIP_TRAILING_WHITESPACE)
if(NOT rc EQUAL 0 OR NOT flags MATCHES "${WORK_DIR}/prefix")
  message(FATAL_ERROR "pkg-config atomio gave '${flags}' (${rc})")
endif()
separate_arguments(_flags UNIX_COMMAND "${flags}")
execute_process(COMMAND cc ${SRC_DIR}/main.c ${_flags} -o ${WORK_DIR}/c-pc RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "cc with pkg-config flags failed")
endif()
message(STATUS "installed package works: ${out}")
