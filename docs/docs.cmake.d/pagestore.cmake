# SPDX-License-Identifier: MIT
# The example engine (docs/examples/pagestore): built with the library's warning set against the
# installed-style interface (atomio.h and libatomio only), plus its SIGKILL crash test.
set(_ps_dir ${CMAKE_CURRENT_SOURCE_DIR}/examples/pagestore)
set(_ps_lib)
if(TARGET atomio)
  set(_ps_lib atomio)
elseif(TARGET atomio_static)
  set(_ps_lib atomio_static)
endif()
if(_ps_lib)
  add_executable(pagestore ${_ps_dir}/pagestore.c)
  target_compile_options(pagestore PRIVATE ${ATOMIO_WARNINGS})
  target_link_libraries(pagestore PRIVATE ${_ps_lib} Threads::Threads)

  if(ATOMIO_BUILD_TESTS)
    # The driver mounts real filesystems with the test helpers and runs the engine as a child.
    add_executable(test_pagestore_crash ${_ps_dir}/crash_test.c ${PROJECT_SOURCE_DIR}/tests/helpers.c)
    target_include_directories(test_pagestore_crash PRIVATE ${PROJECT_SOURCE_DIR}/tests)
    target_compile_definitions(test_pagestore_crash PRIVATE _GNU_SOURCE
                               PAGESTORE_BIN="$<TARGET_FILE:pagestore>")
    target_compile_options(test_pagestore_crash PRIVATE ${ATOMIO_WARNINGS} -Wno-missing-prototypes)
    if(COMMAND atomio_test_framework)
      atomio_test_framework(test_pagestore_crash) # Criterion, or its stand-in under TSan
    else()
      target_link_libraries(test_pagestore_crash PRIVATE PkgConfig::CRITERION)
    endif()
    add_dependencies(test_pagestore_crash pagestore)
    add_test(NAME test_pagestore_crash COMMAND test_pagestore_crash --jobs=2)
    set_tests_properties(test_pagestore_crash PROPERTIES LABELS "root;long" TIMEOUT 180)
  endif()
endif()
