// SPDX-License-Identifier: MIT
//! Helpers shared by the Rust binding's tests: temp dirs, a loop-mounted XFS that unmounts on
//! drop, page patterns, and the round trip every available path must pass. Skips are printed
//! as "skipped: reason" (run with `-- --nocapture` to see them; CTest does).
#![allow(dead_code)]

use atomio::{Ctx, CtxOptions, Error, FileOptions, Policy, Submitter, WritePath};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Once;

extern "C" {
    fn geteuid() -> u32;
}

/// Clear the variables that force a path or submitter on every open; the tests choose.
/// Every test calls this before touching the library, so no other thread reads the
/// environment while it changes.
pub fn setup() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        std::env::remove_var("ATOMIO_PATH");
        std::env::remove_var("ATOMIO_SUBMITTER");
    });
}

pub fn skip(why: &str) {
    eprintln!("skipped: {}", why);
}

/// A private temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let p = std::env::temp_dir().join(format!(
            "atomio-rs-{}-{}-{}-{}",
            tag,
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed),
            nanos
        ));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn have(tool: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false)
}

fn run(argv: &[&str]) -> Result<(), String> {
    let out = Command::new(argv[0])
        .args(&argv[1..])
        .output()
        .map_err(|e| format!("{}: {}", argv[0], e))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{} exited {}: {}{}",
            argv.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// A fresh XFS (reflink=1, so O_DIRECT RWF_ATOMIC works) loop-mounted in a temp dir;
/// unmounted and removed on drop, also when a test panics.
pub struct Xfs {
    tmp: TempDir,
    mnt: PathBuf,
    mounted: bool,
}

impl Xfs {
    /// None (with the reason printed) when not root or the tools are missing.
    pub fn mount() -> Option<Xfs> {
        // SAFETY: geteuid cannot fail.
        let uid = unsafe { geteuid() };
        if uid != 0 {
            skip(&format!("XFS part: loop mounts need root (uid {})", uid));
            return None;
        }
        for t in ["mkfs.xfs", "mount", "umount", "truncate"] {
            if !have(t) {
                skip(&format!(
                    "XFS part: {} not installed (apt-get install xfsprogs)",
                    t
                ));
                return None;
            }
        }
        if !Path::new("/dev/loop-control").exists() {
            skip("XFS part: no /dev/loop-control (loop devices unavailable)");
            return None;
        }
        let tmp = TempDir::new("xfs");
        let img = tmp.path().join("xfs.img");
        let mnt = tmp.path().join("mnt");
        std::fs::create_dir(&mnt).unwrap();
        let mut x = Xfs {
            tmp,
            mnt,
            mounted: false,
        };
        let (img_s, mnt_s) = (img.to_str().unwrap(), x.mnt.to_str().unwrap().to_string());
        // 512 MiB sparse: above mkfs.xfs's 300 MiB floor, a few MiB of real space.
        run(&["truncate", "-s", "512M", img_s]).unwrap();
        run(&["mkfs.xfs", "-q", "-f", "-m", "reflink=1", img_s]).unwrap();
        run(&["mount", "-o", "loop", img_s, &mnt_s]).unwrap();
        x.mounted = true;
        Some(x)
    }

    pub fn dir(&self) -> &Path {
        &self.mnt
    }
}

impl Drop for Xfs {
    fn drop(&mut self) {
        if self.mounted {
            let m = self.mnt.to_str().unwrap();
            if run(&["umount", m]).is_err() {
                let _ = run(&["umount", "-l", m]);
            }
        }
        let _ = &self.tmp; // removed by TempDir's drop, after the unmount above
    }
}

/// Deterministic page content.
pub fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A ctx able to serve `path`: with a doublewrite store for DOUBLEWRITE and AUTO, without
/// one otherwise. Ok(None) = DOUBLEWRITE skipped (no store in this build, reason printed);
/// AUTO goes on without a store then (it never picks DOUBLEWRITE).
pub fn open_ctx(base: &Path, path: WritePath, sub: Submitter, policy: Policy) -> Option<Ctx> {
    let opts = CtxOptions::new().submitter(sub).policy(policy);
    if path == WritePath::DOUBLEWRITE || path == WritePath::AUTO {
        // Created here: the library may insist the directory exists (a missing store
        // directory can mean a deleted store, whose copies recovery would need).
        let store = base.join("dblwr");
        std::fs::create_dir_all(&store).unwrap();
        match Ctx::open(&opts.clone().doublewrite_dir(&store)) {
            Ok(c) => return Some(c),
            Err(e) if e.is_path_unavailable() => {
                if path == WritePath::DOUBLEWRITE {
                    skip(&format!(
                        "DOUBLEWRITE: no doublewrite store in this build: {}",
                        e
                    ));
                    return None;
                }
                eprintln!("AUTO without a store (this build has none: {})", e.name());
            }
            Err(e) => panic!("ctx open with a store: {}", e),
        }
    }
    Some(Ctx::open(&opts).expect("ctx open without a store"))
}

/// Write pages through `path` (a Vec, an unaligned slice, a PageBuf, a batch), read them back
/// through the same and a fresh handle, check info and the stats counters. Returns the path
/// in force, or None when the file cannot take `path` -- which the library must say at open
/// with an "unavailable" code, consistent with the probe; the reason is printed.
pub fn round_trip(
    base: &Path,
    path: WritePath,
    page_size: u32,
    sub: Submitter,
) -> Option<WritePath> {
    setup();
    let ps = page_size as usize;
    let name = base.join(format!("rt-{}-{}-{}", path.name(), sub.raw(), page_size));
    std::fs::File::create(&name).unwrap();
    let caps = atomio::probe(&name, page_size).expect("probe");
    let can = caps.can(path);
    let ctx = open_ctx(base, path, sub, Policy::DEFAULT)?;
    let f = match ctx.open_file(&name, &FileOptions::new(page_size).path(path)) {
        Ok(f) => f,
        Err(e) if e.is_path_unavailable() => {
            assert_ne!(
                can,
                Some(true),
                "probe says {} works ({}) but open: {}",
                path,
                caps.reason(path),
                e
            );
            skip(&format!(
                "{} unavailable here: {}; probe: {}",
                path,
                e,
                caps.reason(path)
            ));
            return None;
        }
        Err(e) => panic!("open {}: {}", path, e),
    };
    if path != WritePath::AUTO {
        assert_ne!(
            can,
            Some(false),
            "probe says no to {} ({}) but open succeeded",
            path,
            caps.reason(path)
        );
    }
    let info = f.info().unwrap();
    if path == WritePath::AUTO {
        assert!(
            info.path != WritePath::AUTO && info.path != WritePath::UNSAFE,
            "{:?}",
            info
        );
    } else {
        assert_eq!(info.path, path, "{:?}", info);
    }
    assert_eq!(info.torn_write_safe, info.path != WritePath::UNSAFE);
    assert_eq!(info.state, atomio::FileState::OK);
    assert_eq!(info.page_size, page_size);
    if sub == Submitter::URING {
        assert!(
            info.submitter == Submitter::URING || info.uring_fallback,
            "{:?}",
            info
        );
    } else if sub == Submitter::SYNC {
        assert_eq!(info.submitter, Submitter::SYNC);
    }
    let chosen = info.path;

    let npages = 6u64;
    let mut want: Vec<Vec<u8>> = (0..npages)
        .map(|n| pattern(1000 * path.raw() as u64 + n, ps))
        .collect();
    // A Vec (whatever its alignment), a deliberately unaligned slice, a library buffer.
    f.write(0, &want[0]).unwrap();
    let mut odd = vec![0u8; ps + 1];
    odd[1..].copy_from_slice(&want[1]);
    f.write(1, &odd[1..]).unwrap();
    let mut buf = ctx.page_alloc(page_size, 1).unwrap();
    buf.copy_from_slice(&want[2]);
    f.write(2, &buf).unwrap();
    f.write_flags(3, &want[3], atomio::WriteFlags::DSYNC)
        .unwrap();
    let batch: Vec<(u64, &[u8])> = (4..npages).map(|n| (n, &want[n as usize][..])).collect();
    f.write_batch(&batch, atomio::WriteFlags::NONE).unwrap();
    // A page written twice reads back as its last content.
    want[0] = pattern(77, ps);
    f.write(0, &want[0]).unwrap();
    let writes = npages + 1;
    f.sync().unwrap();

    for n in 0..npages {
        assert!(
            f.read_vec(n).unwrap() == want[n as usize],
            "page {} differs after {} write",
            n,
            chosen
        );
    }
    assert!(
        f.read_vec(npages + 10).unwrap().iter().all(|&b| b == 0),
        "beyond EOF must read zeros"
    );
    f.read(1, &mut buf).unwrap();
    assert!(buf[..] == want[1][..]);
    f.read(2, &mut odd[1..]).unwrap();
    assert!(odd[1..] == want[2][..]);

    let st = f.stats().unwrap();
    assert_eq!(st.pages_on(chosen), writes, "{:?}", st);
    assert_eq!(st.pages_total(), writes, "{:?}", st);
    assert!(st.bytes_data >= writes * page_size as u64, "{:?}", st);
    assert!(st.syncs >= 1, "{:?}", st);
    assert_eq!(st.lat_hist.iter().sum::<u64>(), writes, "{:?}", st);
    assert!(ctx.stats().unwrap().pages_on(chosen) >= writes);
    drop(buf);
    f.close().unwrap();

    // A fresh handle sees the same bytes.
    let g = ctx
        .open_file(&name, &FileOptions::new(page_size).path(path).create(false))
        .unwrap();
    for n in 0..npages {
        assert!(
            g.read_vec(n).unwrap() == want[n as usize],
            "page {} differs on reopen",
            n
        );
    }
    drop(g);
    ctx.close().unwrap();
    Some(chosen)
}

/// Every path, for round-trip loops. New paths are enum values: listed in WritePath::ALL.
pub fn all_paths() -> Vec<WritePath> {
    let mut v: Vec<WritePath> = WritePath::ALL
        .iter()
        .copied()
        .filter(|p| *p != WritePath::AUTO)
        .collect();
    v.push(WritePath::AUTO);
    v
}

pub fn expect_code<T: std::fmt::Debug>(r: Result<T, Error>, code: i32) -> Error {
    let e = r.expect_err("expected an error");
    assert_eq!(e.code(), code, "{}", e);
    e
}
