/* SPDX-License-Identifier: MIT */
/*
 * bc_log.h -- the block-level crash harness's log: one ordered stream of what the recorder's
 * FUSE daemon received for the backing image (writes, flushes, discards) and the workload's
 * markers, each a fixed header followed by the payload of a write or a marker.
 */
#ifndef BC_LOG_H
#define BC_LOG_H

#include <stdint.h>

#define BC_LOG_MAGIC 0x31474c4342ull /* "BCLG1" */

enum bc_rec_type {
    BC_REC_WRITE = 1,   /* off, len, then len bytes written to the image */
    BC_REC_FLUSH = 2,   /* fsync of the image: everything logged before it is durable */
    BC_REC_DISCARD = 3, /* hole punched at off, len (reads as zeros) */
    BC_REC_MARK = 4     /* len bytes of workload marker text */
};

struct bc_rec_hdr {
    uint32_t type; /* enum bc_rec_type */
    uint32_t reserved;
    uint64_t off;
    uint64_t len;
    uint64_t seq; /* position in the log, from 0 */
};

/* First record of every log: type 0, off = BC_LOG_MAGIC, len = image size. */

#endif /* BC_LOG_H */
