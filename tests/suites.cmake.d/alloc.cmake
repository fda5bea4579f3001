# SPDX-License-Identifier: MIT
# Page buffers (buf.c + numa/alloc backends).
atomio_add_test(test_alloc SOURCES test_alloc.c LABELS unit TIMEOUT 60)

# The host's malloc stays glibc's: the same check linked against the shared and the static
# library exactly as an engine would link them (not atomio_testing).
foreach(_kind shared static)
  if(_kind STREQUAL "shared")
    set(_lib atomio)
  else()
    set(_lib atomio_static)
  endif()
  if(TARGET ${_lib})
    set(_t test_malloc_private_${_kind})
    add_executable(${_t} ${CMAKE_CURRENT_SOURCE_DIR}/test_malloc_private.c)
    target_compile_definitions(${_t} PRIVATE _GNU_SOURCE)
    target_compile_options(${_t} PRIVATE ${ATOMIO_WARNINGS} -Wno-missing-prototypes)
    target_link_libraries(${_t} PRIVATE ${_lib} ${CMAKE_DL_LIBS})
    atomio_test_framework(${_t})
    add_test(NAME ${_t} COMMAND ${_t} --jobs=2)
    set_tests_properties(${_t} PROPERTIES LABELS unit TIMEOUT 30)
  endif()
endforeach()
