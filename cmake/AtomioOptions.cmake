# SPDX-License-Identifier: MIT
# Build options and dependency lookup (every dependency ships pkg-config, none a CMake package).
include(CMakeDependentOption)
find_package(PkgConfig REQUIRED)

set(_atomio_top OFF)
if(CMAKE_SOURCE_DIR STREQUAL PROJECT_SOURCE_DIR)
  set(_atomio_top ON)
endif()

set(ATOMIO_WITH_LIBURING AUTO CACHE STRING "Use liburing (AUTO|ON|OFF)")
set(ATOMIO_WITH_NUMA AUTO CACHE STRING "Use libnuma (AUTO|ON|OFF)")
set(ATOMIO_WITH_JEMALLOC OFF CACHE STRING "Carve page buffers from a private jemalloc arena (AUTO|ON|OFF)")
option(ATOMIO_BUILD_SHARED "Build libatomio.so" ON)
option(ATOMIO_BUILD_STATIC "Build libatomio.a" ON)
option(BUILD_TESTING "Build tests" ON)
cmake_dependent_option(ATOMIO_BUILD_TESTS "Build the Criterion suites" ON "BUILD_TESTING;_atomio_top" OFF)
cmake_dependent_option(ATOMIO_BUILD_BENCH "Build atomio-bench" ON "_atomio_top" OFF)
cmake_dependent_option(ATOMIO_BUILD_DOCS "Install man pages, doc checks" ON "_atomio_top" OFF)
option(ATOMIO_WERROR "Treat warnings as errors" OFF)
# CI sets this so a missing test tool (pytest, cargo) fails the configure instead of quietly
# leaving suites unregistered.
option(ATOMIO_REQUIRE_ALL_TESTS "Fail the configure when a test toolchain is missing" OFF)
if(ATOMIO_REQUIRE_ALL_TESTS)
  set(ATOMIO_MISSING_TEST_TOOL FATAL_ERROR)
else()
  set(ATOMIO_MISSING_TEST_TOOL WARNING)
endif()

# atomio_find_dep(<VAR> <pkg-config module> <imported target name>)
macro(atomio_find_dep opt module)
  if(NOT ${opt} STREQUAL "OFF")
    pkg_check_modules(PC_${module} QUIET IMPORTED_TARGET ${module})
    if(PC_${module}_FOUND)
      set(${opt}_FOUND ON)
    elseif(${opt} STREQUAL "ON")
      message(FATAL_ERROR "${opt}=ON but pkg-config module '${module}' was not found")
    endif()
  endif()
endmacro()

atomio_find_dep(ATOMIO_WITH_LIBURING liburing)
atomio_find_dep(ATOMIO_WITH_NUMA numa)
atomio_find_dep(ATOMIO_WITH_JEMALLOC jemalloc)
if(ATOMIO_BUILD_TESTS)
  pkg_check_modules(CRITERION REQUIRED IMPORTED_TARGET criterion)
endif()
find_package(Threads REQUIRED)

# One python3 for every test that needs it (bench output checks, the Python binding): Debian's
# interpreter first, since its python3-pytest is what scripts/deps.sh installs and a pyenv
# python3 earlier on PATH usually has no pytest.
find_program(ATOMIO_PYTHON3 NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)
if(NOT ATOMIO_PYTHON3)
  find_program(ATOMIO_PYTHON3 NAMES python3)
endif()
