# SPDX-License-Identifier: MIT
# Buffered (page-cache) RWF_ATOMIC, issue 6.
#   test_buffered_sim   -- the path against the simulated kernel (tests/sim_kernel.c), no root
#   test_buffered_rules -- folio-order rule, reasons and selection rows, pure
#   test_buffered_fs    -- real kernels on loop xfs / xfs-16k / ext4 / tmpfs (root)
#   test_buffered_real  -- the sim's bodies, unchanged, in $ATOMIO_TEST_BUFFERED_DIR on a
#                          kernel that accepts buffered RWF_ATOMIC (skips with a reason without)
atomio_add_test(test_buffered_sim
  SOURCES test_buffered_sim.c sim_kernel.c buffered_cases.c LABELS unit TIMEOUT 60)
atomio_add_test(test_buffered_rules SOURCES test_buffered_rules.c LABELS unit TIMEOUT 30)
atomio_add_test(test_buffered_fs SOURCES test_buffered_fs.c LABELS fs TIMEOUT 120)
atomio_add_test(test_buffered_real SOURCES test_buffered_real.c buffered_cases.c LABELS fs TIMEOUT 120)
atomio_add_test(test_buffered_crash
  SOURCES test_buffered_crash.c sim_kernel.c sim_device.c LABELS crash unit TIMEOUT 300)
