# SPDX-License-Identifier: MIT
# Doublewrite store: checksum, on-disk format, protocol, recovery, crash simulation.
atomio_add_test(test_crc32c SOURCES test_crc32c.c LABELS unit TIMEOUT 30)
atomio_add_test(test_dw_format SOURCES test_dw_format.c LABELS unit TIMEOUT 60)
atomio_add_test(test_doublewrite SOURCES test_doublewrite.c LABELS unit TIMEOUT 120)
atomio_add_test(test_crash SOURCES test_crash.c sim_device.c t_engine.c LABELS crash unit TIMEOUT 600)
atomio_add_test(test_recovery SOURCES test_recovery.c LABELS unit TIMEOUT 60)
atomio_add_test(test_dw_fs SOURCES test_dw_fs.c LABELS fs TIMEOUT 240)
