#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""make_corpus.py -- seed inputs for fuzz_store, written from docs/format.md alone (a second,
independent encoder of the doublewrite store, format version 2: if it and the library disagree,
the seeds stop decoding and test_dw_format's seed test fails).

One seed is one store directory: u16 little-endian manifest length m, the m bytes of
atomio-manifest.dblwr, then the bytes of atomio-store.dblwr (possibly none).
Usage: make_corpus.py OUTDIR
"""
import os
import struct
import sys

# CRC32C: Castagnoli, reflected polynomial 0x82F63B78, init and final XOR 0xFFFFFFFF.
POLY = 0x82F63B78
TABLE = []
for _b in range(256):
    _c = _b
    for _ in range(8):
        _c = (_c >> 1) ^ (POLY if _c & 1 else 0)
    TABLE.append(_c)


def crc32c(data):
    crc = 0xFFFFFFFF
    for x in data:
        crc = (crc >> 8) ^ TABLE[(crc ^ x) & 0xFF]
    return crc ^ 0xFFFFFFFF


assert crc32c(b"123456789") == 0xE3069283

BLOCK = 4096          # one store header copy
RING_OFFSET = 8192
GRANULE = 512
RING = 256 * 1024     # the smallest ring
MAX_PS = 4096
UUID = bytes(range(0x10, 0x20))


def round_up(v, a):
    return (v + a - 1) // a * a


def store_header(copy, tail, ring=RING, max_ps=MAX_PS, uuid=UUID):
    """One 4096-byte block: 256 used bytes, then zeros."""
    h = b"ATOMIODW"
    h += struct.pack("<IIII", 2, 256, 0, copy)          # version, header length, flags, copy
    h += struct.pack("<Q", tail // GRANULE)              # generation (informative)
    h += uuid
    h += struct.pack("<QQIIQ", RING_OFFSET, ring, GRANULE, max_ps, tail)
    h += bytes(252 - len(h))                            # reserved, bytes 80..251
    h += struct.pack("<I", crc32c(h))
    assert len(h) == 256
    return h + bytes(BLOCK - 256)


def table_bytes(count):
    return round_up(64 + 32 * count, GRANULE)


def record(lsn, pages, ring=RING, uuid=UUID):
    """pages: list of (file_id, page_no, bytes), biggest first."""
    tb = table_bytes(len(pages))
    off = tb
    table = b""
    for fid, pno, data in pages:
        table += struct.pack("<QQIIII", fid, pno, off, len(data), crc32c(data), 0)
        off += len(data)
    hdr = struct.pack("<IHHQIIQ", 0x43525441, 2, 64, lsn, len(pages), 0, off) + uuid
    hdr += struct.pack("<IQ", crc32c(table), ring)
    hdr += struct.pack("<I", crc32c(hdr))
    assert len(hdr) == 64
    body = hdr + table + bytes(tb - 64 - len(table))
    for _, _, data in pages:
        body += data
    assert len(body) == off and off % GRANULE == 0
    return body


def manifest_record(fid, path, from_lsn=0, relative=False):
    p = path.encode()
    r = struct.pack("<IHHQQII", 0x464D5441, 2, len(p), fid, from_lsn, 1 if relative else 0, 0)
    r += p
    r += struct.pack("<I", crc32c(r))
    return r + bytes(round_up(len(r), 8) - len(r))


def store(records, tail=0, damage_copy=None):
    """records: list of (lsn, bytes); the ring holds each at RING_OFFSET + lsn mod RING."""
    s = bytearray(store_header(0, tail) + store_header(1, tail) + bytes(RING))
    for lsn, rec in records:
        o = RING_OFFSET + lsn % RING
        assert lsn % RING + len(rec) <= RING
        s[o:o + len(rec)] = rec
    if damage_copy is not None:
        s[damage_copy * BLOCK + 60] ^= 0xFF    # inside the ring size: the copy's CRC fails
    return bytes(s)


def pattern(n, seed):
    x = (seed * 2654435761 + 12345) & 0xFFFFFFFF
    out = bytearray(n)
    for i in range(n):
        x = (x * 1103515245 + 12345) & 0xFFFFFFFF
        out[i] = x >> 24
    return bytes(out)


def seed(outdir, name, man, st):
    with open(os.path.join(outdir, name), "wb") as f:
        f.write(struct.pack("<H", len(man)) + man + st)


def main():
    outdir = sys.argv[1]
    os.makedirs(outdir, exist_ok=True)
    # File 7 is recorded relative to the data root, file 8 absolute; file 8 was fenced at LSN
    # 512 after being opened on a path that bypasses the store.
    man = (manifest_record(7, "a.db", relative=True) +
           manifest_record(8, "/nonexistent/atomio-fuzz/b.db", from_lsn=512))
    p1, p2 = pattern(4096, 1), pattern(512, 2)
    one = record(0, [(7, 3, p1), (8, 1, p2)])
    seed(outdir, "empty-ring", b"", store([]))
    seed(outdir, "one-record", man, store([(0, one)]))
    torn = bytearray(one)
    torn[table_bytes(2) + 100] ^= 0xFF          # a byte of the first page
    seed(outdir, "torn-record", man, store([(0, bytes(torn))]))
    seed(outdir, "no-store", man, b"")
    # Second lap: the tail is at 2 x RING; a released record of the first lap still sits
    # below it, a live one of the third lap above it, a copy of page 3 with a newer LSN.
    newer = record(2 * RING + 8192, [(7, 3, pattern(4096, 3))])
    stale = record(RING + 16384, [(7, 3, pattern(4096, 4))])
    seed(outdir, "lapped", man, store([(RING + 16384, stale), (2 * RING + 8192, newer)],
                                      tail=2 * RING))
    # Copy 1 of the header damaged: open repairs it from copy 0.
    seed(outdir, "one-header-copy", man, store([(0, one)], damage_copy=1))
    # A damaged stretch in the middle of the manifest: the reader resyncs past it.
    damaged = bytearray(manifest_record(9, "c.db", relative=True))
    damaged[33] ^= 0x01
    seed(outdir, "manifest-resync",
         manifest_record(7, "old.db", relative=True) + bytes(damaged) + bytes(24) + man +
         manifest_record(10, "d.db", relative=True)[:20],
         store([(0, one)]))


if __name__ == "__main__":
    main()
