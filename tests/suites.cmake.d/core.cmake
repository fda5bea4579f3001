# SPDX-License-Identifier: MIT
atomio_add_test(test_version SOURCES test_version.c LABELS unit TIMEOUT 30)
atomio_add_test(test_errors SOURCES test_errors.c LABELS unit TIMEOUT 30)
