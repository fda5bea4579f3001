# SPDX-License-Identifier: MIT
# Write-path guards and engine integration: RLIMIT_FSIZE refused before an atomic write,
# bounce copies of unaligned pages on O_DIRECT, no-durability mode, engine-owned descriptors.
# The unit cases fake what they need at the syscall seam; the fs cases mount loop filesystems
# (root) and skip with a printed reason otherwise.
atomio_add_test(test_rlimit SOURCES test_rlimit.c sim_kernel.c LABELS "unit;fs" TIMEOUT 120)
atomio_add_test(test_bounce SOURCES test_bounce.c LABELS fs TIMEOUT 120)
atomio_add_test(test_nodurability SOURCES test_nodurability.c LABELS "unit;threads" TIMEOUT 120)
atomio_add_test(test_openfd SOURCES test_openfd.c LABELS unit TIMEOUT 60)
