/* SPDX-License-Identifier: MIT */
/* install consumer: compiles against the installed header, links the installed library. */
#include <atomio.h>
#include <stdio.h>
int main(void) { puts(atomio_version_string()); return 0; }
