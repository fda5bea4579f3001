# SPDX-License-Identifier: MIT
# ATOMIO_WITH_JEMALLOC: build a *private* jemalloc into libatomio, never the host's malloc.
#
# Debian's libjemalloc.so.2 exports plain malloc/free/posix_memalign; linking it (or the static
# libjemalloc.a) would replace the allocator of the whole process that links libatomio. So:
#   1. ld -r pulls out of libjemalloc_pic.a only the members mallocx/dallocx/sallocx/mallctl need
#      (no C++ member, no libstdc++) into one relocatable object;
#   2. every global symbol it defines is renamed atomio_je_<name> (malloc -> atomio_je_malloc,
#      je_arena_* -> atomio_je_je_arena_*), so nothing in it can interpose on anything;
#   3. all of them are made local except the five alloc_jemalloc.c calls.
# The object then goes into libatomio.so, libatomio.a and atomio_testing like any source file.
# Sets ATOMIO_JEMALLOC_OBJECT and ATOMIO_JEMALLOC_LIBS (what the object needs from the system).
# Cost: jemalloc's thread state is initial-exec TLS (~2.6 KiB), so a libatomio.so built this way
# can be dlopen()ed only if glibc has that much static TLS to spare (see docs/design.md).

find_file(ATOMIO_JEMALLOC_PIC libjemalloc_pic.a
  HINTS ${PC_jemalloc_LIBRARY_DIRS} ${PC_jemalloc_LIBDIR}
  PATH_SUFFIXES ${CMAKE_LIBRARY_ARCHITECTURE}
  NO_CACHE)
if(NOT ATOMIO_JEMALLOC_PIC)
  message(FATAL_ERROR "ATOMIO_WITH_JEMALLOC needs libjemalloc_pic.a (Debian: libjemalloc-dev) "
                      "to build a private copy; linking the shared libjemalloc would replace "
                      "the host's malloc")
endif()
foreach(_tool CMAKE_LINKER CMAKE_NM CMAKE_OBJCOPY)
  if(NOT ${_tool})
    message(FATAL_ERROR "ATOMIO_WITH_JEMALLOC needs ${_tool} (binutils)")
  endif()
endforeach()

set(ATOMIO_JEMALLOC_OBJECT ${CMAKE_CURRENT_BINARY_DIR}/jemalloc_private.o)
add_custom_command(
  OUTPUT ${ATOMIO_JEMALLOC_OBJECT}
  COMMAND ${CMAKE_COMMAND}
          -DLD=${CMAKE_LINKER} -DNM=${CMAKE_NM} -DOBJCOPY=${CMAKE_OBJCOPY}
          -DARCHIVE=${ATOMIO_JEMALLOC_PIC} -DOUT=${ATOMIO_JEMALLOC_OBJECT}
          -P ${PROJECT_SOURCE_DIR}/cmake/jemalloc_private.cmake
  DEPENDS ${ATOMIO_JEMALLOC_PIC} ${PROJECT_SOURCE_DIR}/cmake/jemalloc_private.cmake
  COMMENT "Building a private (renamed, localized) jemalloc object"
  VERBATIM)
set_source_files_properties(${ATOMIO_JEMALLOC_OBJECT} PROPERTIES
  EXTERNAL_OBJECT TRUE GENERATED TRUE)
if(PC_jemalloc_INCLUDE_DIRS)
  set_source_files_properties(${CMAKE_CURRENT_SOURCE_DIR}/alloc_jemalloc.c PROPERTIES
    INCLUDE_DIRECTORIES "${PC_jemalloc_INCLUDE_DIRS}")
endif()
# jemalloc calls exp/log/round (libm); unwinding (libgcc_s) and dlsym come with the toolchain/libc.
set(ATOMIO_JEMALLOC_LIBS m)

# One target drives the command; the library targets that list the object wait for it, so
# parallel builds never run two copies of the script on the same files.
add_custom_target(atomio_jemalloc_private DEPENDS ${ATOMIO_JEMALLOC_OBJECT})
# $<TARGET_OBJECTS:atomio_obj> leaves external objects out: the libraries built from it list
# the object themselves (atomio_testing has it through ATOMIO_SOURCES).
function(_atomio_jemalloc_deps)
  foreach(_t atomio_obj atomio atomio_static atomio_testing)
    if(TARGET ${_t})
      add_dependencies(${_t} atomio_jemalloc_private)
    endif()
  endforeach()
  foreach(_t atomio atomio_static)
    if(TARGET ${_t})
      target_sources(${_t} PRIVATE ${ATOMIO_JEMALLOC_OBJECT})
    endif()
  endforeach()
endfunction()
cmake_language(DEFER CALL _atomio_jemalloc_deps)
