#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""make_corpus.py -- seed inputs for fuzz_store, written from docs/format.md alone (a second,
independent encoder of the store format: if it and the library disagree, the seeds stop
decoding and test_dw_format's seed test fails).

Input layout of fuzz_store: u16 LE manifest length, the manifest bytes, the store file bytes.
Usage: make_corpus.py OUTDIR
"""
import os
import struct
import sys

POLY = 0x82F63B78
TABLE = []
for b in range(256):
    c = b
    for _ in range(8):
        c = (c >> 1) ^ (POLY if c & 1 else 0)
    TABLE.append(c)


def crc32c(data, crc=0):
    crc ^= 0xFFFFFFFF
    for x in data:
        crc = (crc >> 8) ^ TABLE[(crc ^ x) & 0xFF]
    return crc ^ 0xFFFFFFFF


ALIGN = 4096
UUID = bytes(range(0x10, 0x20))


def round_up(v, a):
    return (v + a - 1) // a * a


def table_bytes(count):
    return round_up(64 + 48 * count, ALIGN)


def geometry(nseg, batch_pages, max_ps):
    slots = batch_pages * (max_ps // 4096 if max_ps > 4096 else 1)
    seg = round_up(table_bytes(slots) + batch_pages * max_ps, ALIGN)
    return dict(nseg=nseg, batch_pages=batch_pages, max_ps=max_ps, slots=slots, seg=seg,
                seg_off=ALIGN)


def store_header(g):
    h = b"ATOMIODW" + struct.pack("<IIIIIIIIQQ", 1, 128, 0, g["max_ps"].bit_length() - 1,
                                  g["max_ps"], g["nseg"], g["batch_pages"], g["slots"],
                                  g["seg"], g["seg_off"])
    h += UUID + bytes(124 - 56 - 16)
    h += struct.pack("<I", crc32c(h))
    assert len(h) == 128
    return h + bytes(ALIGN - 128)


def batch(seq, pages):
    """pages: list of (file_id, page_no, bytes), biggest first."""
    tb = table_bytes(len(pages))
    body = bytearray(tb)
    off = tb
    table = b""
    for i, (fid, pno, data) in enumerate(pages):
        d = struct.pack("<QQQIIIII", fid, pno, seq, off, len(data), crc32c(data), 0, i)
        table += d + struct.pack("<I", crc32c(d))
        body += data
        off += len(data)
    hdr = struct.pack("<IHHQIIQ", 0x48425441, 1, 64, seq, len(pages), 0, off) + UUID
    hdr += struct.pack("<III", crc32c(table), 0, 0)
    hdr += struct.pack("<I", crc32c(hdr))
    body[0:64] = hdr
    body[64:64 + len(table)] = table
    return bytes(body)


def manifest(records):
    out = b""
    for fid, path in records:
        p = path.encode()
        r = struct.pack("<IHHQ", 0x464D5441, 1, len(p), fid) + p
        r += struct.pack("<I", crc32c(r))
        out += r + bytes(round_up(len(r), 8) - len(r))
    return out


def store(g, batches):
    """batches: dict segment -> batch bytes"""
    s = bytearray(store_header(g) + bytes(g["nseg"] * g["seg"]))
    for seg, b in batches.items():
        o = g["seg_off"] + seg * g["seg"]
        s[o:o + len(b)] = b
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
    g = geometry(2, 2, 4096)
    m = manifest([(7, "/fuzz/data/a.db"), (8, "/fuzz/data/b.db")])
    p1, p2, p3 = pattern(4096, 1), pattern(512, 2), pattern(4096, 3)
    one = batch(5, [(7, 3, p1), (8, 1, p2)])
    seed(outdir, "empty-store", b"", store(g, {}))
    seed(outdir, "one-batch", m, store(g, {0: one}))
    torn = bytearray(one)
    torn[ALIGN + 100] ^= 0xFF
    seed(outdir, "torn-batch", m, store(g, {1: bytes(torn)}))
    seed(outdir, "two-copies", m, store(g, {0: one, 1: batch(9, [(7, 3, p3)])}))
    seed(outdir, "unknown-id", manifest([(8, "/fuzz/data/b.db")]), store(g, {0: one}))
    torn_man = m + manifest([(9, "/fuzz/data/c.db")])[:20]
    seed(outdir, "torn-manifest", torn_man, store(g, {1: one}))
    seed(outdir, "no-store", m, b"")


if __name__ == "__main__":
    main()
