# SPDX-License-Identifier: MIT
# Block-level crash harness on real XFS and ext4 (root, /dev/fuse, loop devices; skips with a
# printed reason otherwise). Sources and the runner are in tests/blockcrash/.
include(${CMAKE_CURRENT_LIST_DIR}/../blockcrash/CMakeLists.txt)
