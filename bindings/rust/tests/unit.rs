// SPDX-License-Identifier: MIT
//! The Rust binding against the built library on a private temp dir (no root needed).

mod common;

use atomio::sys;
use atomio::{
    BatchWrite, Ctx, CtxOptions, DoublewriteMode, FileOptions, IoStyle, Submitter, WriteFlags,
    WritePath,
};
use common::{expect_code, setup, TempDir};

const PS: u32 = 4096;

#[test]
fn version_matches_header() {
    setup();
    let want = format!(
        "{}.{}.{}",
        sys::ATOMIO_VERSION_MAJOR,
        sys::ATOMIO_VERSION_MINOR,
        sys::ATOMIO_VERSION_PATCH
    );
    assert_eq!(atomio::version(), want);
    assert_eq!(
        atomio::version_number() as i64 / 10000,
        sys::ATOMIO_VERSION_MAJOR
    );
}

#[test]
fn error_carries_code_name_message() {
    setup();
    let e = atomio::Error::from_code(sys::ATOMIO_E_CLOSED);
    assert_eq!(e.code(), -5009);
    assert_eq!(e.name(), "ATOMIO_E_CLOSED");
    assert!(!e.message().is_empty() && e.message() != "?");
    assert!(e.is_closed() && !e.is_failed_file() && e.errno().is_none());
    assert!(e.to_string().contains("ATOMIO_E_CLOSED"));
    assert!(atomio::Error::from_code(sys::ATOMIO_E_SHORT_WRITE).is_short_write());
    assert!(atomio::Error::from_code(sys::ATOMIO_E_FAILED).is_failed_file());
    let eio = atomio::Error::from_code(-5);
    assert_eq!((eio.name(), eio.errno()), ("EIO", Some(5)));
    let io: std::io::Error = eio.into();
    assert_eq!(io.raw_os_error(), Some(5));
    // The header has no end marker any more: name the codes this crate knows, which run
    // without a gap from ATOMIO_E_INVAL down.
    let known = [
        (sys::ATOMIO_E_INVAL, "ATOMIO_E_INVAL"),
        (sys::ATOMIO_E_ABI, "ATOMIO_E_ABI"),
        (sys::ATOMIO_E_PAGE_SIZE, "ATOMIO_E_PAGE_SIZE"),
        (sys::ATOMIO_E_UNALIGNED, "ATOMIO_E_UNALIGNED"),
        (sys::ATOMIO_E_RANGE, "ATOMIO_E_RANGE"),
        (sys::ATOMIO_E_PATH_UNSUPPORTED, "ATOMIO_E_PATH_UNSUPPORTED"),
        (sys::ATOMIO_E_FOLIO_ORDER, "ATOMIO_E_FOLIO_ORDER"),
        (sys::ATOMIO_E_SHORT_WRITE, "ATOMIO_E_SHORT_WRITE"),
        (sys::ATOMIO_E_FAILED, "ATOMIO_E_FAILED"),
        (sys::ATOMIO_E_CLOSED, "ATOMIO_E_CLOSED"),
        (sys::ATOMIO_E_READ_ONLY, "ATOMIO_E_READ_ONLY"),
        (sys::ATOMIO_E_NO_DOUBLEWRITE, "ATOMIO_E_NO_DOUBLEWRITE"),
        (sys::ATOMIO_E_STORE, "ATOMIO_E_STORE"),
        (sys::ATOMIO_E_STORE_FULL, "ATOMIO_E_STORE_FULL"),
        (sys::ATOMIO_E_UNRECOVERABLE, "ATOMIO_E_UNRECOVERABLE"),
        (
            sys::ATOMIO_E_NEEDS_DOUBLEWRITE,
            "ATOMIO_E_NEEDS_DOUBLEWRITE",
        ),
        (sys::ATOMIO_E_SEQUENCE, "ATOMIO_E_SEQUENCE"),
        (sys::ATOMIO_E_NO_COPY, "ATOMIO_E_NO_COPY"),
        (sys::ATOMIO_E_GEOMETRY, "ATOMIO_E_GEOMETRY"),
        (sys::ATOMIO_E_BUSY, "ATOMIO_E_BUSY"),
        (sys::ATOMIO_E_STORE_FAILED, "ATOMIO_E_STORE_FAILED"),
        (sys::ATOMIO_E_STORE_LOCKED, "ATOMIO_E_STORE_LOCKED"),
        (sys::ATOMIO_E_UNAPPLIED, "ATOMIO_E_UNAPPLIED"),
    ];
    for (i, &(code, name)) in known.iter().enumerate() {
        assert_eq!(code, sys::ATOMIO_E_INVAL - i as i32, "{}", name);
        assert_eq!(atomio::Error::from_code(code).name(), name);
    }
}

#[test]
fn enum_names_come_from_the_library() {
    setup();
    let names: Vec<&str> = WritePath::ALL.iter().map(|p| p.name()).collect();
    assert_eq!(
        names,
        [
            "AUTO",
            "DIRECT_ATOMIC",
            "BUFFERED_ATOMIC",
            "DOUBLEWRITE",
            "UNSAFE"
        ]
    );
    assert_eq!(Submitter::URING.to_string(), "URING");
    // A value newer than this crate is carried, and named by the library ("?" if unknown).
    assert_eq!(WritePath(99).raw(), 99);
    assert_eq!(WritePath(99).name(), "?");
}

#[test]
fn probe_temp_dir() {
    setup();
    let d = TempDir::new("probe");
    let f = d.path().join("probe");
    std::fs::File::create(&f).unwrap();
    let caps = atomio::probe(&f, PS).unwrap();
    assert_eq!(caps.page_size, PS);
    assert!(caps.valid & sys::ATOMIO_CAPS_VERDICTS != 0);
    assert!(!caps.reason_direct.is_empty() && !caps.reason_auto.is_empty());
    // The experimental statx tail is filled: the crate passes the size that covers it.
    assert!(caps.valid & sys::ATOMIO_CAPS_STATX != 0);
    assert_ne!(caps.statx.statx_mask, 0, "{:?}", caps.statx);
    assert!(
        [
            WritePath::DIRECT_ATOMIC,
            WritePath::BUFFERED_ATOMIC,
            WritePath::DOUBLEWRITE
        ]
        .contains(&caps.auto_path),
        "{:?}",
        caps
    );
    assert_eq!(
        std::fs::metadata(&f).unwrap().len(),
        0,
        "probe must never write the file"
    );
    assert_eq!(atomio::probe(d.path(), PS).unwrap().fs_type, caps.fs_type);
    let e = expect_code(atomio::probe(d.path().join("nope"), PS), -2);
    assert_eq!(e.name(), "ENOENT");
}

#[test]
fn bad_page_size() {
    setup();
    let d = TempDir::new("badps");
    let f = d.path().join("f");
    std::fs::File::create(&f).unwrap();
    let ctx = Ctx::open(&CtxOptions::new()).unwrap();
    for bad in [0u32, 256, 1000, 3 << 12, 2 << 20] {
        let e = expect_code(atomio::probe(&f, bad), sys::ATOMIO_E_PAGE_SIZE);
        assert_eq!(e.name(), "ATOMIO_E_PAGE_SIZE");
        expect_code(
            ctx.open_file(&f, &FileOptions::new(bad).path(WritePath::UNSAFE)),
            sys::ATOMIO_E_PAGE_SIZE,
        );
        expect_code(ctx.page_alloc(bad, 1), sys::ATOMIO_E_PAGE_SIZE);
    }
}

#[test]
fn page_length_is_checked() {
    setup();
    let d = TempDir::new("len");
    let ctx = Ctx::open(&CtxOptions::new()).unwrap();
    let f = ctx
        .open_file(
            d.path().join("f"),
            &FileOptions::new(PS).path(WritePath::UNSAFE),
        )
        .unwrap();
    for n in [0usize, PS as usize - 1, PS as usize + 1, 2 * PS as usize] {
        expect_code(f.write(0, &vec![0u8; n]), sys::ATOMIO_E_PAGE_SIZE);
        expect_code(f.read(0, &mut vec![0u8; n]), sys::ATOMIO_E_PAGE_SIZE);
    }
    assert_eq!(f.stats().unwrap().pages_total(), 0);
}

#[test]
fn closed_handles() {
    setup();
    // Use after close does not compile (see the crate docs' compile_fail examples); what is
    // left to check at run time is that close reports its result and the ctx keeps counting.
    let d = TempDir::new("closed");
    let ctx = Ctx::open(&CtxOptions::new()).unwrap();
    let f = ctx
        .open_file(
            d.path().join("f"),
            &FileOptions::new(PS).path(WritePath::UNSAFE),
        )
        .unwrap();
    f.write(0, &[7u8; PS as usize]).unwrap();
    f.close().unwrap();
    assert_eq!(ctx.stats().unwrap().pages_on(WritePath::UNSAFE), 1);
    {
        let _dropped = ctx
            .open_file(
                d.path().join("g"),
                &FileOptions::new(PS).path(WritePath::UNSAFE),
            )
            .unwrap();
    }
    ctx.close().unwrap();
}

#[test]
fn read_only_file() {
    setup();
    let d = TempDir::new("ro");
    let p = d.path().join("ro");
    std::fs::write(&p, vec![0u8; PS as usize]).unwrap();
    let ctx = Ctx::open(&CtxOptions::new()).unwrap();
    let f = ctx
        .open_file(
            &p,
            &FileOptions::new(PS).path(WritePath::UNSAFE).read_only(true),
        )
        .unwrap();
    let e = expect_code(f.write(0, &[1u8; PS as usize]), sys::ATOMIO_E_READ_ONLY);
    assert_eq!(e.name(), "ATOMIO_E_READ_ONLY");
    assert!(f.read_vec(0).unwrap().iter().all(|&b| b == 0));
}

#[test]
fn page_buf_is_aligned_and_owned() {
    setup();
    let ctx = Ctx::open(&CtxOptions::new()).unwrap();
    let mut b = ctx.page_alloc(16384, 3).unwrap();
    assert_eq!(b.len(), 3 * 16384);
    assert_eq!(b.as_ptr() as usize % 16384, 0);
    assert!(b.iter().all(|&x| x == 0), "PageBuf promises zeroed memory");
    b.page_mut(2)[..4].copy_from_slice(b"abcd");
    assert_eq!(&b[2 * 16384..2 * 16384 + 4], b"abcd");
    assert_eq!((b.page_size(), b.npages()), (16384, 3));
    expect_code(ctx.page_alloc(4096, 0), sys::ATOMIO_E_INVAL);
}

#[test]
fn batch_reports_per_entry_results() {
    setup();
    let d = TempDir::new("batch");
    std::fs::File::create(d.path().join("b")).unwrap();
    let ctx = Ctx::open(&CtxOptions::new()).unwrap();
    let a = ctx
        .open_file(
            d.path().join("a"),
            &FileOptions::new(PS).path(WritePath::UNSAFE),
        )
        .unwrap();
    let b = ctx
        .open_file(
            d.path().join("b"),
            &FileOptions::new(PS).path(WritePath::UNSAFE).read_only(true),
        )
        .unwrap();
    let (p1, p2, p3) = ([1u8; PS as usize], [2u8; PS as usize], [3u8; PS as usize]);
    let mut ok = [BatchWrite::new(&a, 0, &p1), BatchWrite::new(&a, 1, &p2)];
    ctx.write_batch(&mut ok, WriteFlags::NONE).unwrap();
    let mut mixed = [
        BatchWrite::new(&a, 2, &p2),
        BatchWrite::new(&b, 0, &p1),
        BatchWrite::new(&a, 3, &p3),
    ];
    let e = expect_code(
        ctx.write_batch(&mut mixed, WriteFlags::NONE),
        sys::ATOMIO_E_READ_ONLY,
    );
    assert!(e.context().unwrap().contains("1 of 3"), "{}", e);
    assert!(mixed[0].result().is_ok() && mixed[2].result().is_ok());
    assert_eq!(
        mixed[1].result().unwrap_err().code(),
        sys::ATOMIO_E_READ_ONLY
    );
    assert_eq!(a.read_vec(3).unwrap(), p3.to_vec());
    assert_eq!(a.stats().unwrap().pages_on(WritePath::UNSAFE), 4);
    // Entries of another ctx are refused before anything is written.
    let other = Ctx::open(&CtxOptions::new()).unwrap();
    let mut foreign = [BatchWrite::new(&a, 9, &p1)];
    expect_code(
        other.write_batch(&mut foreign, WriteFlags::NONE),
        sys::ATOMIO_E_INVAL,
    );
}

#[test]
fn stats_count_writes() {
    setup();
    let d = TempDir::new("stats");
    let ctx = Ctx::open(&CtxOptions::new()).unwrap();
    let before = ctx.stats().unwrap();
    let f = ctx
        .open_file(
            d.path().join("f"),
            &FileOptions::new(PS).path(WritePath::UNSAFE),
        )
        .unwrap();
    for n in 0..5u8 {
        f.write(n as u64, &[n; PS as usize]).unwrap();
    }
    let z = [0u8; PS as usize];
    f.write_batch(&[(5, &z[..]), (6, &z[..])], WriteFlags::NONE)
        .unwrap();
    f.sync().unwrap();
    let st = f.stats().unwrap();
    assert_eq!(st.pages_on(WritePath::UNSAFE), 7);
    assert_eq!(st.pages_total(), 7);
    assert_eq!(st.bytes_data, 7 * PS as u64);
    assert_eq!(
        (st.bytes_doublewrite, st.short_writes, st.failed_syncs),
        (0, 0, 0)
    );
    assert!(st.syncs >= 1);
    let after = ctx.stats().unwrap();
    assert_eq!(
        after.pages_on(WritePath::UNSAFE) - before.pages_on(WritePath::UNSAFE),
        7
    );
}

#[test]
fn round_trip_every_path_temp_dir() {
    setup();
    let d = TempDir::new("rt");
    let mut ran = Vec::new();
    for p in common::all_paths() {
        if let Some(chosen) = common::round_trip(d.path(), p, PS, Submitter::AUTO) {
            ran.push(format!("{}->{}", p, chosen));
        }
    }
    eprintln!("round trips on {}: {}", d.path().display(), ran.join(", "));
    assert!(
        ran.iter().any(|s| s.starts_with("UNSAFE")),
        "UNSAFE must work anywhere"
    );
}

#[test]
fn stable_pages_doublewrite() {
    // WriteFlags::STABLE_PAGES on DOUBLEWRITE: library pages (aligned) are written to the
    // store and in place without a copy, io_uring also splitting the store write; a Vec may
    // be bounce-copied by the crate. Everything reads back, also through a fresh ctx.
    setup();
    let flags = WriteFlags::STABLE_PAGES | WriteFlags::DSYNC;
    assert_eq!(
        flags.0,
        sys::ATOMIO_WRITE_STABLE_PAGES | sys::ATOMIO_WRITE_DSYNC
    );
    assert!(flags.contains(WriteFlags::STABLE_PAGES) && !WriteFlags::NONE.contains(flags));
    for sub in [Submitter::SYNC, Submitter::URING] {
        let d = TempDir::new("stable");
        let store = d.path().join("dblwr");
        std::fs::create_dir(&store).unwrap();
        let ctx = match Ctx::open(&CtxOptions::new().doublewrite_dir(&store).submitter(sub)) {
            Ok(c) => c,
            Err(e) if e.is_path_unavailable() => {
                common::skip(&format!("stable pages: no doublewrite store: {}", e));
                return;
            }
            Err(e) => panic!("{}", e),
        };
        let data = d.path().join("data");
        let want: Vec<Vec<u8>> = (0..8)
            .map(|n| common::pattern(900 + n, PS as usize))
            .collect();
        {
            let f = ctx
                .open_file(&data, &FileOptions::new(PS).path(WritePath::DOUBLEWRITE))
                .unwrap();
            let mut buf = ctx.page_alloc(PS, 4).unwrap();
            for k in 0..4 {
                buf.page_mut(k).copy_from_slice(&want[k]);
            }
            f.write_flags(0, buf.page(0), WriteFlags::STABLE_PAGES)
                .unwrap();
            f.write_flags(1, &want[1], flags).unwrap();
            f.write_batch(
                &[(2, buf.page(2)), (3, buf.page(3))],
                WriteFlags::STABLE_PAGES,
            )
            .unwrap();
            buf.page_mut(0).copy_from_slice(&want[4]);
            buf.page_mut(1).copy_from_slice(&want[5]);
            let mut mixed = [
                BatchWrite::new(&f, 4, buf.page(0)),
                BatchWrite::new(&f, 5, buf.page(1)),
                BatchWrite::new(&f, 6, &want[6]),
                BatchWrite::new(&f, 7, &want[7]),
            ];
            ctx.write_batch(&mut mixed, flags).unwrap();
            f.sync().unwrap();
            let st = f.stats().unwrap();
            assert_eq!(st.pages_on(WritePath::DOUBLEWRITE), 8, "{:?}", sub);
            assert!(st.bytes_doublewrite >= 8 * PS as u64);
            for (n, w) in want.iter().enumerate() {
                assert!(
                    f.read_vec(n as u64).unwrap() == *w,
                    "page {} ({:?})",
                    n,
                    sub
                );
            }
        }
        ctx.close().unwrap();
        let ctx = Ctx::open(&CtxOptions::new().doublewrite_dir(&store)).unwrap();
        let f = ctx
            .open_file(&data, &FileOptions::new(PS).create(false))
            .unwrap();
        for (n, w) in want.iter().enumerate() {
            assert!(f.read_vec(n as u64).unwrap() == *w, "page {} reopened", n);
        }
    }
}

#[test]
fn recover_needs_a_store() {
    setup();
    let ctx = Ctx::open(&CtxOptions::new()).unwrap();
    let (r, rep) = ctx.recover_with_report();
    assert_eq!(r.unwrap_err().name(), "ATOMIO_E_NO_DOUBLEWRITE");
    assert_eq!(rep.pages_restored, 0);
}

#[test]
fn recover_with_store() {
    // A clean close leaves nothing to restore: recovery restores nothing. The v2 store moves
    // its durable tail lazily, so the records of the last batch may still be there to check;
    // the verify closure is then asked about exactly those pages, and a page it calls intact
    // stays as it is.
    setup();
    let d = TempDir::new("rec");
    let store = d.path().join("dblwr");
    std::fs::create_dir(&store).unwrap();
    let ctx = match store_ctx(&CtxOptions::new().doublewrite_dir(&store)) {
        Some(c) => c,
        None => return,
    };
    let data = d.path().join("data");
    let (p5, p6) = (
        common::pattern(5, PS as usize),
        common::pattern(6, PS as usize),
    );
    {
        let f = ctx
            .open_file(
                &data,
                &FileOptions::new(PS).path(WritePath::DOUBLEWRITE).file_id(7),
            )
            .unwrap();
        f.write_batch(&[(0, &p5[..]), (1, &p6[..])], WriteFlags::NONE)
            .unwrap();
        f.sync().unwrap();
        assert!(f.stats().unwrap().bytes_doublewrite >= 2 * PS as u64);
    }
    ctx.close().unwrap();

    let calls = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let c2 = calls.clone();
    let want = [p5.clone(), p6.clone()];
    let ctx = Ctx::open(
        &CtxOptions::new()
            .doublewrite_dir(&store)
            .no_recover(true)
            .verify(move |id, n, page| {
                let ok = id == 7 && n < 2 && page == &want[n as usize][..];
                c2.lock().unwrap().push(ok);
                true
            }),
    )
    .unwrap();
    let r = ctx.recover().unwrap();
    assert!(r.ring_bytes_scanned >= 1, "{:?}", r);
    assert_eq!(
        (
            r.pages_unapplied,
            r.pages_discarded,
            r.batches_discarded,
            r.pages_fenced
        ),
        (0, 0, 0, 0),
        "{:?}",
        r
    );
    assert_eq!((r.pages_restored, r.pages_unrecoverable), (0, 0), "{:?}", r);
    let calls = calls.lock().unwrap().clone();
    assert_eq!(r.pages_verified_intact, r.pages_checked, "{:?}", r);
    assert_eq!(r.pages_checked as usize, calls.len(), "{:?}", r);
    assert!(calls.iter().all(|&ok| ok), "verify saw another page");
    assert_eq!(
        ctx.recover().unwrap().pages_restored,
        0,
        "recovery is idempotent"
    );
    assert_eq!(ctx.stats().unwrap().recovered_pages, 0);
    let f = ctx
        .open_file(&data, &FileOptions::new(PS).create(false))
        .unwrap();
    assert_eq!(f.read_vec(1).unwrap(), p6);
}

#[test]
fn data_root_is_accepted() {
    // The library takes the 0.2 options struct with data_root set (RawCtxOpts' own test in
    // src/lib.rs checks the field carries the path), and pages round-trip through a store.
    setup();
    let d = TempDir::new("root");
    let store = d.path().join("dblwr");
    let root = d.path().join("data");
    std::fs::create_dir(&store).unwrap();
    std::fs::create_dir(&root).unwrap();
    let opts = CtxOptions::new().doublewrite_dir(&store).data_root(&root);
    let ctx = match Ctx::open(&opts) {
        Ok(c) => c,
        Err(e) if e.is_path_unavailable() => {
            common::skip(&format!(
                "data_root: no doublewrite store in this build: {}",
                e
            ));
            return;
        }
        Err(e) => panic!("{}", e),
    };
    let p1 = common::pattern(1, PS as usize);
    {
        let f = ctx
            .open_file(
                root.join("t1"),
                &FileOptions::new(PS).path(WritePath::DOUBLEWRITE),
            )
            .unwrap();
        f.write(0, &p1).unwrap();
        f.sync().unwrap();
    }
    ctx.close().unwrap();
    let ctx = Ctx::open(&opts).unwrap();
    let f = ctx
        .open_file(root.join("t1"), &FileOptions::new(PS).create(false))
        .unwrap();
    assert_eq!(f.read_vec(0).unwrap(), p1);
}

#[test]
fn file_is_shared_across_threads() {
    setup();
    let d = TempDir::new("threads");
    let ctx = Ctx::open(&CtxOptions::new()).unwrap();
    let f = ctx
        .open_file(
            d.path().join("f"),
            &FileOptions::new(PS).path(WritePath::UNSAFE),
        )
        .unwrap();
    // Unaligned sources on purpose: they share the file's locked bounce buffer.
    std::thread::scope(|s| {
        for t in 0..4u64 {
            let f = &f;
            s.spawn(move || {
                let mut v = vec![0u8; PS as usize + 1];
                for i in 0..8u64 {
                    let n = t * 8 + i;
                    v[1..].copy_from_slice(&common::pattern(n, PS as usize));
                    f.write(n, &v[1..]).unwrap();
                }
            });
        }
    });
    for n in 0..32u64 {
        assert_eq!(
            f.read_vec(n).unwrap(),
            common::pattern(n, PS as usize),
            "page {}",
            n
        );
    }
    assert_eq!(f.stats().unwrap().pages_on(WritePath::UNSAFE), 32);
}

// --- the shared doublewrite store (0.2): options, stats, instances, operator calls ----------

const MIB: u64 = 1 << 20;

/// Ctx::open(opts), or None (the skip printed) when this build has no doublewrite store.
fn store_ctx(opts: &CtxOptions) -> Option<Ctx> {
    match Ctx::open(opts) {
        Ok(c) => Some(c),
        Err(e) if e.is_path_unavailable() => {
            common::skip(&format!("no doublewrite store in this build: {}", e));
            None
        }
        Err(e) => panic!("{}", e),
    }
}

fn new_store(tag: &str) -> (TempDir, std::path::PathBuf) {
    let d = TempDir::new(tag);
    let store = d.path().join("dblwr");
    std::fs::create_dir(&store).unwrap();
    (d, store)
}

#[test]
fn store_bytes_and_stats() {
    // doublewrite_store_bytes sizes the store, and the store's counters come back in Stats.
    setup();
    let (d, store) = new_store("bytes");
    let ctx = match store_ctx(
        &CtxOptions::new()
            .doublewrite_dir(&store)
            .doublewrite_store_bytes(MIB),
    ) {
        Some(c) => c,
        None => return,
    };
    let st = ctx.stats().unwrap();
    assert_eq!(
        (st.store_bytes, st.store_bytes_used, st.attached),
        (MIB, 0, 1),
        "{:?}",
        st
    );
    let fst = {
        let f = ctx
            .open_file(
                d.path().join("data"),
                &FileOptions::new(PS).path(WritePath::DOUBLEWRITE),
            )
            .unwrap();
        f.write(0, &common::pattern(1, PS as usize)).unwrap();
        f.stats().unwrap()
    };
    let st = ctx.stats().unwrap();
    assert!(st.group_commits >= 1 && st.group_records >= 1, "{:?}", st);
    assert_eq!(st.forced_syncs, 0, "{:?}", st);
    // The store figures are the ctx's; a file reports 0 for them.
    assert_eq!((fst.store_bytes, fst.attached), (0, 0), "{:?}", fst);
    ctx.close().unwrap();
    // After a reset the store is laid out afresh, at the size the next open asks for.
    atomio::store_reset(&store).unwrap();
    let ctx = Ctx::open(
        &CtxOptions::new()
            .doublewrite_dir(&store)
            .doublewrite_store_bytes(2 * MIB),
    )
    .unwrap();
    assert_eq!(ctx.stats().unwrap().store_bytes, 2 * MIB);
    let none = Ctx::open(&CtxOptions::new()).unwrap();
    assert_eq!(none.stats().unwrap().store_bytes, 0);
}

#[test]
fn doublewrite_mode_reaches_the_library() {
    // SYNC_BATCH releases a batch's copies before the write returns; DEFERRED keeps them
    // until a sync covers the in-place write. An unknown mode is refused.
    setup();
    let (d, store) = new_store("mode");
    for (mode, held) in [
        (DoublewriteMode::SYNC_BATCH, false),
        (DoublewriteMode::DEFERRED, true),
    ] {
        let ctx = match store_ctx(
            &CtxOptions::new()
                .doublewrite_dir(&store)
                .doublewrite_mode(mode),
        ) {
            Some(c) => c,
            None => return,
        };
        let f = ctx
            .open_file(
                d.path().join("data"),
                &FileOptions::new(PS).path(WritePath::DOUBLEWRITE),
            )
            .unwrap();
        f.write(0, &common::pattern(2, PS as usize)).unwrap();
        assert_eq!(ctx.stats().unwrap().store_bytes_used > 0, held, "{}", mode);
        f.sync().unwrap();
        assert_eq!(ctx.stats().unwrap().store_bytes_used, 0, "{}", mode);
    }
    let e = Ctx::open(
        &CtxOptions::new()
            .doublewrite_dir(&store)
            .doublewrite_mode(DoublewriteMode(7)),
    )
    .err()
    .unwrap();
    assert_eq!(e.name(), "ATOMIO_E_INVAL");
}

#[test]
fn private_store_is_locked_with_a_reason() {
    // A second open of a private instance's store is STORE_LOCKED, and the error carries the
    // library's reason; store_reset() is refused while the store is open.
    setup();
    let (_d, store) = new_store("locked");
    let ctx = match store_ctx(&CtxOptions::new().doublewrite_dir(&store)) {
        Some(c) => c,
        None => return,
    };
    for opts in [
        CtxOptions::new().doublewrite_dir(&store),
        CtxOptions::new().doublewrite_dir(&store).instance("eng"),
    ] {
        let e = Ctx::open(&opts)
            .err()
            .expect("a second open of a private instance");
        assert!(e.is_store_locked(), "{}", e);
        let reason = e.reason().expect("a reason").to_string();
        assert!(
            !reason.is_empty() && e.to_string().contains(&reason),
            "{}",
            e
        );
        assert_eq!(atomio::last_reason(), reason);
    }
    let e = atomio::store_reset(&store).unwrap_err();
    assert!(e.is_store_locked() && e.reason().is_some(), "{}", e);
    ctx.close().unwrap();
    // Closed: the reset goes through and finds nothing to discard.
    let r = atomio::store_reset(&store).unwrap();
    assert_eq!((r.batches_discarded, r.pages_discarded), (0, 0), "{:?}", r);
    let ctx = Ctx::open(&CtxOptions::new().doublewrite_dir(&store)).unwrap();
    assert!(ctx.stats().unwrap().store_bytes > 0);
}

#[test]
fn named_instance_is_shared() {
    // Ctxs naming the same instance share the store (another name is refused); a second
    // process of the instance counts in stats.attached.
    setup();
    let (_d, store) = new_store("shared");
    let opts = CtxOptions::new().doublewrite_dir(&store).instance("eng");
    let a = match store_ctx(&opts.clone().doublewrite_store_bytes(MIB)) {
        Some(c) => c,
        None => return,
    };
    assert_eq!(a.stats().unwrap().attached, 1);
    with_child_attached(&store, "eng", || a.stats().unwrap().attached == 2);
    assert_eq!(a.stats().unwrap().attached, 1);
    {
        let b = Ctx::open(&opts).unwrap();
        let st = b.stats().unwrap();
        assert_eq!(st.store_bytes, MIB, "b joined a's store, not a fresh one");
        assert_eq!(st.attached, 1, "attached counts processes, not ctxs");
    }
    let e = Ctx::open(&CtxOptions::new().doublewrite_dir(&store).instance("other"))
        .err()
        .unwrap();
    assert!(e.is_store_locked(), "{}", e);
    assert!(e.reason().unwrap().contains("\"eng\""), "{}", e);
}

#[test]
fn process_stays_attached_while_a_ctx_uses_the_store() {
    // Closing one of two ctxs of a process, or a refused open, must leave the process
    // attached while its other ctx still uses the store.
    setup();
    let (_d, store) = new_store("stays");
    let opts = CtxOptions::new().doublewrite_dir(&store).instance("eng");
    let a = match store_ctx(&opts) {
        Some(c) => c,
        None => return,
    };
    Ctx::open(&opts).unwrap().close().unwrap();
    assert_eq!(
        a.stats().unwrap().attached,
        1,
        "closing a second ctx detached the process"
    );
    assert!(Ctx::open(&CtxOptions::new().doublewrite_dir(&store).instance("other")).is_err());
    assert_eq!(
        a.stats().unwrap().attached,
        1,
        "a refused open detached the process"
    );
    with_child_attached(&store, "eng", || a.stats().unwrap().attached == 2);
}

#[test]
fn unapplied_copies_remap_and_discard() {
    // Copies of a file that moved after a crash: the open fails with UNAPPLIED and a reason,
    // the unapplied closure names the file, remap_file() lets recovery apply them,
    // discard_file() drops them, and store_reset() counts the live records it discards.
    setup();
    let (d, store) = new_store("unapplied");
    match store_ctx(&CtxOptions::new().doublewrite_dir(&store)) {
        Some(c) => c.close().unwrap(),
        None => return,
    }
    let data = d.path().join("data");
    let moved = d.path().join("moved");
    crash_child(&store, &data);
    std::fs::rename(&data, &moved).unwrap();

    type Seen = std::sync::Arc<std::sync::Mutex<Vec<(u64, Option<std::path::PathBuf>, u64, i32)>>>;
    let seen: Seen = Default::default();
    let opts = |seen: &Seen| {
        let s = seen.clone();
        CtxOptions::new()
            .doublewrite_dir(&store)
            .unapplied(move |id, path, pages, err| {
                s.lock()
                    .unwrap()
                    .push((id, path.map(|p| p.to_path_buf()), pages, err.code()))
            })
    };
    let want = vec![(42, Some(data.clone()), 2, -2)];
    let e = Ctx::open(&opts(&seen)).err().unwrap();
    assert_eq!(e.name(), "ATOMIO_E_UNAPPLIED", "{}", e);
    assert!(e.reason().is_some(), "{}", e);
    assert_eq!(*seen.lock().unwrap(), want);

    seen.lock().unwrap().clear();
    {
        let ctx = Ctx::open(&opts(&seen).no_recover(true)).unwrap();
        let (r, rep) = ctx.recover_with_report();
        let e = r.unwrap_err();
        assert_eq!(e.name(), "ATOMIO_E_UNAPPLIED");
        assert!(e.reason().is_some(), "{}", e);
        assert_eq!(
            (rep.pages_unapplied, rep.files_missing),
            (2, 1),
            "{:?}",
            rep
        );
        assert_eq!(*seen.lock().unwrap(), want);
        assert_eq!(
            ctx.remap_file(0, &moved).unwrap_err().name(),
            "ATOMIO_E_INVAL"
        );
        ctx.remap_file(42, &moved).unwrap();
        let rep = ctx.recover().unwrap();
        assert_eq!(
            (rep.pages_checked, rep.pages_unapplied),
            (2, 0),
            "{:?}",
            rep
        );
        let f = ctx
            .open_file(&moved, &FileOptions::new(PS).create(false))
            .unwrap();
        assert_eq!(f.read_vec(0).unwrap(), vec![b'a'; PS as usize]);
        assert_eq!(f.read_vec(1).unwrap(), vec![b'b'; PS as usize]);
    }

    crash_child(&store, &data);
    std::fs::remove_file(&data).unwrap();
    {
        let ctx = Ctx::open(&CtxOptions::new().doublewrite_dir(&store).no_recover(true)).unwrap();
        ctx.discard_file(42).unwrap();
        let rep = ctx.recover().unwrap();
        assert_eq!(
            (rep.pages_discarded, rep.pages_unapplied),
            (2, 0),
            "{:?}",
            rep
        );
    }

    crash_child(&store, &data);
    let rep = atomio::store_reset(&store).unwrap();
    assert_eq!(
        (rep.batches_discarded, rep.pages_discarded),
        (2, 2),
        "{:?}",
        rep
    );
    let ctx = Ctx::open(&CtxOptions::new().doublewrite_dir(&store)).unwrap();
    assert_eq!(ctx.recover().unwrap().batches_valid, 0);
}

#[test]
fn unapplied_panic_is_resumed() {
    // A panic in the unapplied closure cannot cross the C frames: it is resumed when the
    // call returns.
    setup();
    let (d, store) = new_store("panic");
    match store_ctx(&CtxOptions::new().doublewrite_dir(&store)) {
        Some(c) => c.close().unwrap(),
        None => return,
    }
    let data = d.path().join("data");
    crash_child(&store, &data);
    std::fs::remove_file(&data).unwrap();
    let opts = CtxOptions::new()
        .doublewrite_dir(&store)
        .unapplied(|_, _, _, _| panic!("from the closure"));
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        Ctx::open(&opts).map(|_| ())
    }));
    assert_eq!(
        r.unwrap_err().downcast_ref::<&str>(),
        Some(&"from the closure")
    );
    assert_eq!(atomio::store_reset(&store).unwrap().pages_discarded, 2);
}

#[test]
fn reason_is_not_left_over_from_an_earlier_failure() {
    // A failure that sets no reason of its own must not carry the previous one.
    setup();
    let (d, store) = new_store("stale");
    let _ctx = match store_ctx(&CtxOptions::new().doublewrite_dir(&store)) {
        Some(c) => c,
        None => return,
    };
    let e = Ctx::open(&CtxOptions::new().doublewrite_dir(&store))
        .err()
        .unwrap();
    assert!(e.reason().is_some(), "{}", e);
    let e = atomio::store_reset(d.path().join("missing")).unwrap_err();
    assert_eq!(e.name(), "ENOENT");
    assert_eq!(
        e.reason(),
        None,
        "atomio_store_reset() kept an earlier failure's reason"
    );
}

#[test]
fn fence_handles() {
    // fence() succeeds on a store-backed file, and on a ctx without a store (nothing to
    // fence); pages written after it go through the store as usual; a read-only file is
    // refused. (Use after close does not compile.)
    setup();
    let (d, store) = new_store("fence");
    let data = d.path().join("data");
    let ctx = match store_ctx(&CtxOptions::new().doublewrite_dir(&store)) {
        Some(c) => c,
        None => return,
    };
    {
        let f = ctx
            .open_file(
                &data,
                &FileOptions::new(PS).path(WritePath::DOUBLEWRITE).file_id(9),
            )
            .unwrap();
        f.write(0, &common::pattern(1, PS as usize)).unwrap();
        f.sync().unwrap();
        f.fence().unwrap();
        f.write(1, &common::pattern(2, PS as usize)).unwrap();
        f.sync().unwrap();
        let ro = ctx
            .open_file(&data, &FileOptions::new(PS).read_only(true))
            .unwrap();
        let e = expect_code(ro.fence(), sys::ATOMIO_E_READ_ONLY);
        assert_eq!(e.name(), "ATOMIO_E_READ_ONLY");
    }
    ctx.close().unwrap();
    let ctx = Ctx::open(&CtxOptions::new()).unwrap();
    let f = ctx
        .open_file(
            d.path().join("plain"),
            &FileOptions::new(PS).path(WritePath::UNSAFE),
        )
        .unwrap();
    f.fence().unwrap();
}

#[test]
fn fence_dir_counts_the_files_under_a_directory() {
    // fence_dir() fences every file recorded under a directory (not its neighbour whose name
    // it prefixes) and returns how many; a missing directory is ENOENT; a ctx without a store
    // has nothing to fence.
    setup();
    let (d, store) = new_store("fence_dir");
    let db = d.path().join("db");
    std::fs::create_dir_all(db.join("sub")).unwrap();
    std::fs::create_dir_all(d.path().join("dbx")).unwrap();
    let ctx = match store_ctx(&CtxOptions::new().doublewrite_dir(&store)) {
        Some(c) => c,
        None => return,
    };
    for (i, p) in [db.join("a"), db.join("sub/b"), d.path().join("dbx/c")].iter().enumerate() {
        let f = ctx
            .open_file(p, &FileOptions::new(PS).path(WritePath::DOUBLEWRITE))
            .unwrap();
        f.write(0, &common::pattern(i as u64, PS as usize)).unwrap();
    }
    ctx.sync().unwrap();
    assert_eq!(ctx.fence_dir(&db).unwrap(), 2);
    let e = expect_code(ctx.fence_dir(d.path().join("gone")), -2);
    assert_eq!(e.name(), "ENOENT");
    ctx.close().unwrap();
    let ctx = Ctx::open(&CtxOptions::new()).unwrap();
    assert_eq!(ctx.fence_dir(&db).unwrap(), 0);
}

/// A crash leaves live copies of pages 0 and 1 of file id 42; the engine then truncates the
/// file (after fencing it if `fence`) and recovery runs. The report and the file's size
/// afterwards, or None when this build has no store.
fn truncate_after_crash(tag: &str, fence: bool) -> Option<(atomio::RecoveryReport, u64, TempDir)> {
    let (d, store) = new_store(tag);
    store_ctx(&CtxOptions::new().doublewrite_dir(&store))?
        .close()
        .unwrap();
    let data = d.path().join("data");
    crash_child(&store, &data);
    assert_eq!(std::fs::metadata(&data).unwrap().len(), 2 * PS as u64);
    {
        let ctx = Ctx::open(&CtxOptions::new().doublewrite_dir(&store).no_recover(true)).unwrap();
        let f = ctx
            .open_file(
                &data,
                &FileOptions::new(PS)
                    .path(WritePath::DOUBLEWRITE)
                    .file_id(42)
                    .create(false),
            )
            .unwrap();
        if fence {
            f.fence().unwrap();
        }
        std::fs::OpenOptions::new()
            .write(true)
            .open(&data)
            .unwrap()
            .set_len(0)
            .unwrap();
    }
    let ctx = Ctx::open(&CtxOptions::new().doublewrite_dir(&store).no_recover(true)).unwrap();
    let rep = ctx.recover().unwrap();
    let size = std::fs::metadata(&data).unwrap().len();
    Some((rep, size, d))
}

#[test]
fn fenced_truncation_is_not_undone_by_recovery() {
    // The case fence() exists for: recovery skips the copies from before the fence (counted
    // in pages_fenced) and the truncated file stays empty.
    setup();
    let (rep, size, _d) = match truncate_after_crash("fenced", true) {
        Some(t) => t,
        None => return,
    };
    assert_eq!(size, 0, "recovery wrote fenced copies back: {:?}", rep);
    assert_eq!(
        (rep.pages_fenced, rep.pages_restored, rep.pages_unapplied),
        (2, 0, 0),
        "{:?}",
        rep
    );
}

#[test]
fn unfenced_truncation_is_undone_by_recovery() {
    // The control: without the fence recovery writes the old copies back over the
    // truncation, so the test above shows the fence at work.
    setup();
    let (rep, size, d) = match truncate_after_crash("unfenced", false) {
        Some(t) => t,
        None => return,
    };
    assert_eq!(size, 2 * PS as u64, "{:?}", rep);
    assert_eq!(rep.pages_fenced, 0, "{:?}", rep);
    let bytes = std::fs::read(d.path().join("data")).unwrap();
    assert!(bytes[..PS as usize].iter().all(|&b| b == b'a'));
    assert!(bytes[PS as usize..].iter().all(|&b| b == b'b'));
}

/// WRITE_BEHIND options for a named instance on `store`.
fn write_behind_opts(store: &std::path::Path) -> CtxOptions {
    CtxOptions::new()
        .doublewrite_dir(store)
        .doublewrite_mode(DoublewriteMode::WRITE_BEHIND)
        .instance("wb")
}

#[test]
fn write_behind_stages_until_flush() {
    // A WRITE_BEHIND write returns with its page staged, not in the file: a plain read of the
    // file still sees the old bytes while File::read sees the new page; Ctx::flush puts it in
    // place. The counters say the same: one staged write, one read served from staging.
    setup();
    let (d, store) = new_store("wb");
    let data = d.path().join("data");
    let old = common::pattern(11, PS as usize);
    let new = common::pattern(12, PS as usize);
    std::fs::write(&data, &old).unwrap();
    let ctx = match store_ctx(&write_behind_opts(&store).write_behind_bytes(MIB)) {
        Some(c) => c,
        None => return,
    };
    {
        let f = ctx
            .open_file(
                &data,
                &FileOptions::new(PS)
                    .path(WritePath::DOUBLEWRITE)
                    .io_style(IoStyle::BUFFERED)
                    .create(false)
                    .file_id(5),
            )
            .unwrap();
        assert_eq!(f.info().unwrap().path, WritePath::DOUBLEWRITE);
        f.write(0, &new).unwrap();
        // The control for the reads below: the page is staged, not yet written in place.
        assert!(
            std::fs::read(&data).unwrap() == old,
            "a staged page is already in the file"
        );
        assert_eq!(ctx.stats().unwrap().staged_now, 1);
        assert!(
            f.read_vec(0).unwrap() == new,
            "File::read did not see the staged page"
        );
        ctx.flush().unwrap();
        assert!(
            std::fs::read(&data).unwrap() == new,
            "the page is not in the file after flush()"
        );
        let (fst, cst) = (f.stats().unwrap(), ctx.stats().unwrap());
        assert_eq!((fst.pages_staged, fst.staged_reads), (1, 1), "{:?}", fst);
        assert_eq!(
            (cst.pages_staged, cst.staged_reads, cst.staged_now),
            (1, 1, 0),
            "{:?}",
            cst
        );
        assert_eq!(fst.staged_now, 0, "staged_now is a ctx figure");
        assert!(cst.group_commits >= 1, "{:?}", cst);
        // Read after the flush: from the file, not from staging.
        assert!(f.read_vec(0).unwrap() == new);
        assert_eq!(f.stats().unwrap().staged_reads, 1);
    }
    ctx.close().unwrap();
    // Reopened in DEFERRED mode (no process of the instance left): the page is in the file.
    let ctx = Ctx::open(
        &CtxOptions::new()
            .doublewrite_dir(&store)
            .doublewrite_mode(DoublewriteMode::DEFERRED),
    )
    .unwrap();
    let f = ctx
        .open_file(&data, &FileOptions::new(PS).create(false))
        .unwrap();
    assert!(f.read_vec(0).unwrap() == new);
}

#[test]
fn write_behind_options_and_flush_elsewhere() {
    // write_behind_bytes reaches the library (a size it refuses is ATOMIO_E_INVAL); flush()
    // is a no-op in the other modes and without a store; a DEFERRED process cannot join a
    // WRITE_BEHIND instance. (Flush after close does not compile.)
    setup();
    let (d, store) = new_store("wbopts");
    let e = match Ctx::open(&write_behind_opts(&store).write_behind_bytes(1000)) {
        Err(e) if e.is_path_unavailable() => {
            common::skip(&format!("no doublewrite store in this build: {}", e));
            return;
        }
        r => r.err().expect("write_behind_bytes 1000 accepted"),
    };
    assert_eq!(e.name(), "ATOMIO_E_INVAL", "{}", e);
    {
        let _wb = Ctx::open(&write_behind_opts(&store)).unwrap();
        let e = Ctx::open(&write_behind_opts(&store).doublewrite_mode(DoublewriteMode::DEFERRED))
            .err()
            .unwrap();
        assert!(e.is_store_locked() && e.reason().is_some(), "{}", e);
    }
    for mode in [DoublewriteMode::SYNC_BATCH, DoublewriteMode::DEFERRED] {
        let ctx = Ctx::open(
            &CtxOptions::new()
                .doublewrite_dir(&store)
                .doublewrite_mode(mode),
        )
        .unwrap();
        let f = ctx
            .open_file(
                d.path().join("data"),
                &FileOptions::new(PS).path(WritePath::DOUBLEWRITE),
            )
            .unwrap();
        f.write(0, &common::pattern(3, PS as usize)).unwrap();
        ctx.flush().unwrap();
        let st = ctx.stats().unwrap();
        assert_eq!(
            (st.pages_staged, st.staged_now),
            (0, 0),
            "{}: {:?}",
            mode,
            st
        );
    }
    Ctx::open(&CtxOptions::new()).unwrap().flush().unwrap();
}

// --- child processes: this test binary run again with CHILD_ENV naming a job ----------------

const CHILD_ENV: &str = "ATOMIO_RS_TEST_CHILD";

extern "C" {
    fn _exit(status: i32) -> !;
}

/// Not a test of its own: the body of the child processes the tests above start. Without
/// CHILD_ENV it does nothing.
#[test]
fn child_process() {
    let job = match std::env::var(CHILD_ENV) {
        Ok(j) => j,
        Err(_) => return,
    };
    let store = std::env::var("ATOMIO_RS_TEST_STORE").unwrap();
    let arg = std::env::var("ATOMIO_RS_TEST_ARG").unwrap();
    match job.as_str() {
        // Open the store as instance `arg`, report stats.attached, hold it until told.
        "attach" => {
            let ctx = Ctx::open(&CtxOptions::new().doublewrite_dir(&store).instance(&arg)).unwrap();
            println!("attached {}", ctx.stats().unwrap().attached);
            let mut line = String::new();
            std::io::stdin().read_line(&mut line).unwrap();
            ctx.close().unwrap();
        }
        // Write two pages of file id 42 (the data file `arg`) through DEFERRED copies and die
        // without a sync or a close, leaving both copies live in the store.
        "crash" => {
            let ctx = Ctx::open(
                &CtxOptions::new()
                    .doublewrite_dir(&store)
                    .doublewrite_mode(DoublewriteMode::DEFERRED),
            )
            .unwrap();
            let f = ctx
                .open_file(
                    &arg,
                    &FileOptions::new(PS)
                        .path(WritePath::DOUBLEWRITE)
                        .file_id(42),
                )
                .unwrap();
            f.write(0, &vec![b'a'; PS as usize]).unwrap();
            f.write(1, &vec![b'b'; PS as usize]).unwrap();
            // SAFETY: ends the process at once, as a crash would: no destructor runs.
            unsafe { _exit(0) }
        }
        other => panic!("unknown child job {}", other),
    }
}

fn child(job: &str, store: &std::path::Path, arg: &str) -> std::process::Command {
    let mut c = std::process::Command::new(std::env::current_exe().unwrap());
    c.args([
        "--exact",
        "child_process",
        "--nocapture",
        "--test-threads",
        "1",
        "-q",
    ])
    .env(CHILD_ENV, job)
    .env("ATOMIO_RS_TEST_STORE", store)
    .env("ATOMIO_RS_TEST_ARG", arg);
    c
}

fn crash_child(store: &std::path::Path, data: &std::path::Path) {
    let st = child("crash", store, data.to_str().unwrap())
        .status()
        .unwrap();
    assert!(st.success(), "crash child: {}", st);
}

/// Run check() while a child process has the store open as `instance`; the child must see
/// two processes attached.
fn with_child_attached(store: &std::path::Path, instance: &str, check: impl FnOnce() -> bool) {
    use std::io::{BufRead, Write};
    let mut c = child("attach", store, instance)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(c.stdout.take().unwrap());
    let mut seen = None;
    let mut line = String::new();
    while out.read_line(&mut line).unwrap() > 0 {
        if let Some(n) = line.trim().strip_prefix("attached ") {
            seen = Some(n.to_string());
            break;
        }
        line.clear();
    }
    let ok = seen.as_deref() == Some("2") && check();
    c.stdin.take().unwrap().write_all(b"\n").unwrap();
    let st = c.wait().unwrap();
    assert!(ok, "child saw attached {:?}", seen);
    assert!(st.success(), "attach child: {}", st);
}
