// SPDX-License-Identifier: MIT
//! The Rust binding against the built library on a private temp dir (no root needed).

mod common;

use atomio::sys;
use atomio::{BatchWrite, Ctx, CtxOptions, FileOptions, Submitter, WriteFlags, WritePath};
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
    // A clean close leaves nothing to restore: recovery scans the store and reports zeros,
    // and a verify closure is accepted (it runs only for pages that differ from their copy;
    // producing one needs a crash inside a batch, which the C crash suites simulate).
    setup();
    let d = TempDir::new("rec");
    let store = d.path().join("dblwr");
    std::fs::create_dir(&store).unwrap();
    let ctx = match Ctx::open(&CtxOptions::new().doublewrite_dir(&store)) {
        Ok(c) => c,
        Err(e) if e.is_path_unavailable() => {
            common::skip(&format!(
                "recover: no doublewrite store in this build: {}",
                e
            ));
            return;
        }
        Err(e) => panic!("{}", e),
    };
    let data = d.path().join("data");
    let (p5, p6) = (
        common::pattern(5, PS as usize),
        common::pattern(6, PS as usize),
    );
    {
        let f = ctx
            .open_file(&data, &FileOptions::new(PS).path(WritePath::DOUBLEWRITE))
            .unwrap();
        f.write_batch(&[(0, &p5[..]), (1, &p6[..])], WriteFlags::NONE)
            .unwrap();
        f.sync().unwrap();
        assert!(f.stats().unwrap().bytes_doublewrite >= 2 * PS as u64);
    }
    ctx.close().unwrap();

    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let c2 = calls.clone();
    let ctx = Ctx::open(
        &CtxOptions::new()
            .doublewrite_dir(&store)
            .no_recover(true)
            .verify(move |_, _, _| {
                c2.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                true
            }),
    )
    .unwrap();
    let r = ctx.recover().unwrap();
    assert!(r.segments_scanned >= 1, "{:?}", r);
    assert_eq!(
        (r.pages_unapplied, r.pages_discarded, r.batches_discarded),
        (0, 0, 0),
        "{:?}",
        r
    );
    assert_eq!(
        (r.batches_valid, r.pages_restored, r.pages_unrecoverable),
        (0, 0, 0),
        "{:?}",
        r
    );
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
    drop(f);
    assert_eq!(calls.load(std::sync::atomic::Ordering::Relaxed), 0);
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
