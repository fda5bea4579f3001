# SPDX-License-Identifier: MIT
# io_uring submitter and multi-threaded ctx use. test_async mounts loop filesystems for its
# uring_fs tests (they skip, with the reason, when not root).
if(HAVE_LIBURING)
  atomio_add_test(test_async SOURCES test_async.c LABELS "fs;threads" TIMEOUT 120)
endif()
# Many threads on one ctx (also built without liburing: then it exercises pwritev2 only).
atomio_add_test(test_threads SOURCES test_threads.c LABELS "fs;threads" TIMEOUT 120)
