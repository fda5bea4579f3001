# SPDX-License-Identifier: MIT
# Doublewrite store: checksum, on-disk format, protocol, recovery, crash simulation.
atomio_add_test(test_crc32c SOURCES test_crc32c.c LABELS unit TIMEOUT 30)
