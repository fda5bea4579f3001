# SPDX-License-Identifier: MIT
# The warning set; ATOMIO_WERROR turns them into errors (CI and presets).
set(ATOMIO_WARNINGS -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2
    -Wcast-qual -Wvla -Wundef -Wpointer-arith)
if(ATOMIO_WERROR)
  list(APPEND ATOMIO_WARNINGS -Werror)
endif()
