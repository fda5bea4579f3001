# SPDX-License-Identifier: MIT
# mancheck.cmake -- CTest check (cmake -P): every symbol the built shared library exports has a
# section-3 man page, every man3 page names an exported symbol, every .so alias resolves, and
# every page under docs/man renders without a groff warning.
#
#   cmake -DLIB=<libatomio.so> -DMANDIR=<docs/man> [-DNM=nm] [-DGROFF=groff] -P mancheck.cmake
#
# Symbols are read from the binary (nm -D --defined-only, readelf --dyn-syms as a fallback), not
# from the header or the version script, so a function exported by mistake is caught as well.
cmake_minimum_required(VERSION 3.20)

if(NOT LIB OR NOT EXISTS "${LIB}")
  message(FATAL_ERROR "mancheck: LIB='${LIB}' is not a built library")
endif()
if(NOT MANDIR OR NOT IS_DIRECTORY "${MANDIR}/man3")
  message(FATAL_ERROR "mancheck: MANDIR='${MANDIR}' has no man3 directory")
endif()

set(_errors 0)
macro(fail msg)
  message(SEVERE_WARNING "mancheck: ${msg}")
  math(EXPR _errors "${_errors} + 1")
endmacro()

# --- exported functions ------------------------------------------------------------------
if(NOT NM)
  find_program(NM nm)
endif()
set(_syms)
if(NM)
  execute_process(COMMAND ${NM} -D --defined-only "${LIB}"
                  OUTPUT_VARIABLE _out RESULT_VARIABLE _rc ERROR_VARIABLE _err)
  if(NOT _rc EQUAL 0)
    message(FATAL_ERROR "mancheck: ${NM} -D ${LIB} failed: ${_err}")
  endif()
  string(REPLACE "\n" ";" _lines "${_out}")
  foreach(_l IN LISTS _lines)
    # "0000000000003fbb T atomio_ctx_close@@ATOMIO_0.2"
    if(_l MATCHES "^[0-9a-fA-F]+ [TtWiI] ([A-Za-z_][A-Za-z0-9_]*)")
      list(APPEND _syms ${CMAKE_MATCH_1})
    endif()
  endforeach()
else()
  find_program(READELF readelf)
  if(NOT READELF)
    message(FATAL_ERROR "mancheck: neither nm nor readelf found (apt-get install binutils)")
  endif()
  execute_process(COMMAND ${READELF} --dyn-syms -W "${LIB}"
                  OUTPUT_VARIABLE _out RESULT_VARIABLE _rc)
  if(NOT _rc EQUAL 0)
    message(FATAL_ERROR "mancheck: ${READELF} --dyn-syms ${LIB} failed")
  endif()
  string(REPLACE "\n" ";" _lines "${_out}")
  foreach(_l IN LISTS _lines)
    # "  12: 0000000000003fbb   146 FUNC    GLOBAL DEFAULT   12 atomio_ctx_close@@ATOMIO_0.2"
    if(_l MATCHES "FUNC +(GLOBAL|WEAK) +DEFAULT +[0-9]+ +([A-Za-z_][A-Za-z0-9_]*)")
      list(APPEND _syms ${CMAKE_MATCH_2})
    endif()
  endforeach()
endif()
list(REMOVE_DUPLICATES _syms)
list(FILTER _syms EXCLUDE REGEX "^_")   # _init, _fini and friends
list(LENGTH _syms _nsyms)
if(_nsyms EQUAL 0)
  message(FATAL_ERROR "mancheck: no exported functions found in ${LIB}")
endif()

# Read a page; follow one level of ".so man3/x.3". Sets <out> to the text that documents it.
function(read_page file out)
  file(READ "${file}" _t)
  if(_t MATCHES "^\\.so +([^\n ]+)")
    set(_target "${MANDIR}/${CMAKE_MATCH_1}")
    if(NOT EXISTS "${_target}")
      set(${out} "BROKEN-SO:${CMAKE_MATCH_1}" PARENT_SCOPE)
      return()
    endif()
    file(READ "${_target}" _t)
  endif()
  set(${out} "${_t}" PARENT_SCOPE)
endfunction()

foreach(_s IN LISTS _syms)
  set(_p "${MANDIR}/man3/${_s}.3")
  if(NOT EXISTS "${_p}")
    fail("exported function ${_s} has no man page (expected docs/man/man3/${_s}.3)")
    continue()
  endif()
  read_page("${_p}" _t)
  if(_t MATCHES "^BROKEN-SO:(.*)")
    fail("man3/${_s}.3 is an alias of ${CMAKE_MATCH_1}, which does not exist")
    continue()
  endif()
  # The NAME section of the documenting page must list the function.
  if(NOT _t MATCHES "\\.SH NAME\n[^\n]*[ ,]${_s}[ ,\\]")
    if(NOT _t MATCHES "\\.SH NAME\n${_s}[ ,\\]")
      fail("the page for ${_s} does not list it in its NAME section")
    endif()
  endif()
  if(NOT _t MATCHES "\\.SH SYNOPSIS" OR NOT _t MATCHES "[^a-z_]${_s} *\\(")
    fail("the page for ${_s} has no SYNOPSIS prototype for it")
  endif()
  foreach(_sec "DESCRIPTION" "RETURN VALUE" "ERRORS" "NOTES" "SEE ALSO")
    if(NOT _t MATCHES "\\.SH \"?${_sec}")
      fail("the page for ${_s} has no ${_sec} section")
    endif()
  endforeach()
endforeach()

# No stale pages: a man3 page must name something the library exports.
file(GLOB _pages3 "${MANDIR}/man3/*.3")
foreach(_p IN LISTS _pages3)
  get_filename_component(_n "${_p}" NAME_WE)
  list(FIND _syms "${_n}" _i)
  if(_i LESS 0)
    fail("man3/${_n}.3 documents ${_n}, which the library does not export")
  endif()
endforeach()

# Cross references: every "atomio_x (3)" a page mentions must have a page of its own.
file(GLOB _pages_all "${MANDIR}/man3/*.3" "${MANDIR}/man7/*.7" "${MANDIR}/man1/*.1")
foreach(_p IN LISTS _pages_all)
  file(READ "${_p}" _src)
  string(REGEX MATCHALL "(atomio_[a-z0-9_]+) \\(3\\)" _refs "${_src}")
  foreach(_r IN LISTS _refs)
    string(REGEX REPLACE " .*" "" _r "${_r}")
    if(NOT EXISTS "${MANDIR}/man3/${_r}.3")
      file(RELATIVE_PATH _rel "${MANDIR}" "${_p}")
      fail("${_rel} refers to ${_r}(3), which has no page")
    endif()
  endforeach()
endforeach()

# --- roff lint ----------------------------------------------------------------------------
if(NOT GROFF)
  find_program(GROFF groff)
endif()
file(GLOB _all "${MANDIR}/man1/*.1" "${MANDIR}/man3/*.3" "${MANDIR}/man7/*.7")
if(NOT GROFF)
  # Printed, and counted as a failure only when asked: CI installs groff-base.
  message(WARNING "mancheck: groff not installed (apt-get install groff-base): roff lint not run")
  if(REQUIRE_GROFF)
    fail("groff required but not found")
  endif()
else()
  foreach(_p IN LISTS _all)
    file(RELATIVE_PATH _rel "${MANDIR}" "${_p}")
    execute_process(COMMAND ${GROFF} -man -Tutf8 -ww -z "${_rel}"
                    WORKING_DIRECTORY "${MANDIR}"
                    RESULT_VARIABLE _rc OUTPUT_VARIABLE _o ERROR_VARIABLE _e)
    if(NOT _rc EQUAL 0 OR NOT _e STREQUAL "")
      fail("${_rel}: groff reports:\n${_e}")
    endif()
    file(READ "${_p}" _src)
    if(NOT _src MATCHES "^\\.so " AND NOT _src MATCHES "\\.SH NAME\n")
      fail("${_rel}: no NAME section")
    endif()
  endforeach()
endif()

list(LENGTH _all _npages)
if(_errors GREATER 0)
  message(FATAL_ERROR "mancheck: ${_errors} problem(s); ${_nsyms} exported functions, ${_npages} pages")
endif()
message(STATUS "mancheck: ${_nsyms} exported functions, each with a man page; ${_npages} pages lint clean")
