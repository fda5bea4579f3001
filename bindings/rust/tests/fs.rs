// SPDX-License-Identifier: MIT
//! The Rust binding on a real loop-mounted XFS with reflink (root; the XFS part is skipped
//! with a printed reason otherwise). One mount for the whole suite, unmounted on drop even
//! when a check panics.

mod common;

use atomio::{Ctx, CtxOptions, DirectAtomic, FileOptions, IoStyle, Policy, Submitter, WritePath};
use common::{round_trip, setup, Xfs};
use std::path::Path;

const XFS_MAGIC: u64 = 0x5846_5342;

fn probe_xfs(dir: &Path, ps: u32) {
    let f = dir.join(format!("probe-{}", ps));
    std::fs::File::create(&f).unwrap();
    let caps = atomio::probe(&f, ps).unwrap();
    assert_eq!(caps.fs_type, XFS_MAGIC);
    assert!(caps.valid & atomio::sys::ATOMIO_CAPS_STATX != 0);
    // reflink=1 XFS does atomic O_DIRECT writes through copy-on-write whatever the device.
    assert_ne!(
        caps.direct_atomic,
        DirectAtomic::NONE,
        "{}",
        caps.reason_direct
    );
    let sx = caps.statx; // the experimental raw statx mirror
    assert!(
        sx.unit_min > 0 && sx.unit_min <= ps && ps <= sx.unit_max,
        "{:?}",
        caps
    );
    assert!(sx.segments_max >= 1);
    // AUTO under the probe's assumptions (io ANY, PREFER_FAST, store available), as
    // docs/design.md describes the choice.
    let want = if caps.buffered_atomic {
        WritePath::BUFFERED_ATOMIC
    } else if caps.direct_atomic == DirectAtomic::HARDWARE {
        WritePath::DIRECT_ATOMIC
    } else {
        WritePath::DOUBLEWRITE
    };
    assert_eq!(caps.auto_path, want, "{}", caps.reason_auto);
    assert_eq!(std::fs::metadata(&f).unwrap().len(), 0);
    eprintln!(
        "xfs probe {}: direct {} ({}), auto {}",
        ps, caps.direct_atomic, caps.reason_direct, caps.auto_path
    );
}

fn prefer_atomic_picks_direct(dir: &Path) {
    let f = dir.join("prefer-atomic");
    let ctx = Ctx::open(&CtxOptions::new().policy(Policy::PREFER_ATOMIC)).unwrap();
    let fh = ctx
        .open_file(&f, &FileOptions::new(4096).io_style(IoStyle::DIRECT))
        .unwrap();
    let info = fh.info().unwrap();
    assert_eq!(info.path, WritePath::DIRECT_ATOMIC, "{}", info.reason);
    assert!(info.o_direct && info.torn_write_safe);
    assert_eq!(info.policy, Policy::PREFER_ATOMIC);
    fh.write(0, &[0xa5; 4096]).unwrap();
    assert_eq!(fh.read_vec(0).unwrap(), vec![0xa5; 4096]);
    assert_eq!(fh.stats().unwrap().pages_on(WritePath::DIRECT_ATOMIC), 1);
}

#[test]
fn xfs() {
    setup();
    let x = match Xfs::mount() {
        Some(x) => x,
        None => return, // reason printed
    };
    let dir = x.dir();
    for ps in [4096, 16384] {
        probe_xfs(dir, ps);
        // Must not skip: reflink XFS can always do it.
        assert_eq!(
            round_trip(dir, WritePath::DIRECT_ATOMIC, ps, Submitter::AUTO),
            Some(WritePath::DIRECT_ATOMIC),
            "DIRECT_ATOMIC must work on reflink XFS at {}",
            ps
        );
    }
    for sub in [Submitter::SYNC, Submitter::URING] {
        for p in common::all_paths() {
            let got = round_trip(dir, p, 4096, sub);
            eprintln!("xfs round trip {} via {}: {:?}", p, sub, got);
        }
    }
    prefer_atomic_picks_direct(dir);
}
