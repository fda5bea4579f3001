// SPDX-License-Identifier: MIT
//! The hand-written `atomio::sys` mirror against the C compiler's layout of atomio.h:
//! every struct size, every field's offset and size, every constant; and that the helper's
//! own hand-written list leaves no field of a struct out.

use atomio::__layout;
use atomio::sys::*;
use std::collections::BTreeMap;
use std::mem::{align_of, size_of, MaybeUninit};

fn size_of_target<T>(_: *const T) -> usize {
    size_of::<T>()
}

fn align_of_target<T>(_: *const T) -> usize {
    align_of::<T>()
}

/// (offset, size, alignment) by (struct, field); the struct itself under field "".
type Layout = BTreeMap<(String, String), (usize, usize, usize)>;

/// (offset, size) of a field, without offset_of! (Rust 1.77) so Debian's 1.63 builds it.
macro_rules! field {
    ($map:ident, $t:ident, $f:ident) => {{
        let u = MaybeUninit::<$t>::uninit();
        let base = u.as_ptr();
        // SAFETY: addr_of! computes the field address without reading or referencing it.
        let fp = unsafe { std::ptr::addr_of!((*base).$f) };
        let off = fp as usize - base as usize;
        $map.insert(
            (stringify!($t).to_string(), stringify!($f).to_string()),
            (off, size_of_target(fp), align_of_target(fp)),
        );
    }};
}

macro_rules! layout {
    ($map:ident, $t:ident { $($f:ident),* $(,)? }) => {{
        $map.insert(
            (stringify!($t).to_string(), String::new()),
            (0, size_of::<$t>(), align_of::<$t>()),
        );
        $( field!($map, $t, $f); )*
    }};
}

fn rust_layout() -> Layout {
    let mut m = BTreeMap::new();
    layout!(
        m,
        atomio_ctx_opts {
            size,
            flags,
            doublewrite_dir,
            policy,
            submitter,
            queue_depth,
            doublewrite_mode,
            doublewrite_batch_pages,
            doublewrite_max_page_size,
            numa_node,
            reserved0,
            verify,
            verify_arg,
            data_root,
            unapplied,
            unapplied_arg,
            instance,
            doublewrite_store_bytes,
            write_behind_bytes,
            reserved
        }
    );
    layout!(
        m,
        atomio_recovery_report {
            size,
            reserved0,
            ring_bytes_scanned,
            batches_scanned,
            batches_valid,
            batches_torn,
            pages_checked,
            pages_restored,
            pages_verified_intact,
            pages_unrecoverable,
            files_missing,
            unknown_file_ids,
            pages_unapplied,
            pages_discarded,
            batches_discarded,
            headers_repaired,
            pages_fenced
        }
    );
    layout!(
        m,
        atomio_caps {
            size,
            valid,
            page_size,
            sys_page_size,
            fs_block_size,
            dev_major,
            dev_minor,
            hw_unit_max,
            hw_sysfs_err,
            direct_atomic,
            buffered_atomic,
            buffered_probe_err,
            page_order,
            fs_min_order,
            fs_type,
            auto_path,
            folio_ok,
            reason_direct,
            reason_buffered,
            reason_doublewrite,
            reason_auto,
            // experimental tail
            statx_mask,
            dio_mem_align,
            statx_attributes,
            dio_offset_align,
            dio_read_offset_align,
            unit_min,
            unit_max,
            segments_max,
            unit_max_opt
        }
    );
    layout!(
        m,
        atomio_file_opts {
            size,
            flags,
            page_size,
            io_style,
            path,
            policy,
            file_id,
            mode,
            reserved0,
            reserved
        }
    );
    layout!(
        m,
        atomio_file_info {
            size,
            path,
            torn_write_safe,
            state,
            page_size,
            io_style,
            policy,
            submitter,
            uring_fallback,
            downgrades,
            o_direct,
            direct_atomic,
            file_id,
            calib_atomic_ns,
            calib_doublewrite_ns,
            reason,
            reject_direct,
            reject_buffered,
            reject_doublewrite
        }
    );
    layout!(
        m,
        atomio_page_write {
            file,
            page_no,
            page,
            result,
            reserved0
        }
    );
    layout!(
        m,
        atomio_stats {
            size,
            reserved0,
            pages,
            bytes_data,
            bytes_doublewrite,
            syncs,
            batches,
            downgrades,
            short_writes,
            failed_syncs,
            recovered_pages,
            uring_fallbacks,
            lat_hist,
            bounce_copies,
            forced_syncs,
            group_commits,
            group_records,
            store_bytes,
            store_bytes_used,
            attached,
            pages_staged,
            staged_reads,
            staged_now
        }
    );
    m
}

macro_rules! consts {
    ($($c:ident),* $(,)?) => {{
        let mut m: BTreeMap<String, i64> = BTreeMap::new();
        $( m.insert(stringify!($c).to_string(), $c as i64); )*
        m
    }};
}

fn rust_consts() -> BTreeMap<String, i64> {
    consts!(
        ATOMIO_VERSION_MAJOR,
        ATOMIO_VERSION_MINOR,
        ATOMIO_VERSION_PATCH,
        ATOMIO_OK,
        ATOMIO_E_INVAL,
        ATOMIO_E_ABI,
        ATOMIO_E_PAGE_SIZE,
        ATOMIO_E_UNALIGNED,
        ATOMIO_E_RANGE,
        ATOMIO_E_PATH_UNSUPPORTED,
        ATOMIO_E_FOLIO_ORDER,
        ATOMIO_E_SHORT_WRITE,
        ATOMIO_E_FAILED,
        ATOMIO_E_CLOSED,
        ATOMIO_E_READ_ONLY,
        ATOMIO_E_NO_DOUBLEWRITE,
        ATOMIO_E_STORE,
        ATOMIO_E_STORE_FULL,
        ATOMIO_E_UNRECOVERABLE,
        ATOMIO_E_NEEDS_DOUBLEWRITE,
        ATOMIO_E_SEQUENCE,
        ATOMIO_E_NO_COPY,
        ATOMIO_E_GEOMETRY,
        ATOMIO_E_BUSY,
        ATOMIO_E_STORE_FAILED,
        ATOMIO_E_STORE_LOCKED,
        ATOMIO_E_UNAPPLIED,
        ATOMIO_PATH_AUTO,
        ATOMIO_PATH_DIRECT_ATOMIC,
        ATOMIO_PATH_BUFFERED_ATOMIC,
        ATOMIO_PATH_DOUBLEWRITE,
        ATOMIO_PATH_UNSAFE,
        ATOMIO_STATS_PATHS,
        ATOMIO_IO_ANY,
        ATOMIO_IO_BUFFERED,
        ATOMIO_IO_DIRECT,
        ATOMIO_POLICY_DEFAULT,
        ATOMIO_POLICY_PREFER_FAST,
        ATOMIO_POLICY_PREFER_ATOMIC,
        ATOMIO_POLICY_CALIBRATE,
        ATOMIO_SUBMIT_AUTO,
        ATOMIO_SUBMIT_URING,
        ATOMIO_SUBMIT_SYNC,
        ATOMIO_STATE_OK,
        ATOMIO_STATE_FAILED,
        ATOMIO_STATE_CLOSED,
        ATOMIO_CTX_NO_DOUBLEWRITE,
        ATOMIO_CTX_NO_RECOVER,
        ATOMIO_CTX_LOCK_PAGES,
        ATOMIO_CTX_NO_DURABILITY,
        ATOMIO_DOUBLEWRITE_SYNC_BATCH,
        ATOMIO_DOUBLEWRITE_DEFERRED,
        ATOMIO_DOUBLEWRITE_WRITE_BEHIND,
        ATOMIO_REASON_LEN,
        ATOMIO_ATOMIC_NONE,
        ATOMIO_ATOMIC_HARDWARE,
        ATOMIO_ATOMIC_SOFTWARE,
        ATOMIO_CAPS_STATX,
        ATOMIO_CAPS_SYSFS,
        ATOMIO_CAPS_BUFFERED,
        ATOMIO_CAPS_VERDICTS,
        ATOMIO_FILE_CREATE,
        ATOMIO_FILE_RDONLY,
        ATOMIO_FILE_NO_COPY,
        ATOMIO_FILE_DSYNC,
        ATOMIO_WRITE_DSYNC,
        ATOMIO_WRITE_STABLE_PAGES,
        ATOMIO_LAT_BUCKETS,
    )
}

#[test]
fn struct_layout_matches_c() {
    let c = __layout::fields();
    assert!(!c.is_empty(), "layout helper is a stub: {}", __layout::NOTE);
    let r = rust_layout();
    let mut mismatches = Vec::new();
    for (ty, field, off, size) in &c {
        match r.get(&(ty.clone(), field.clone())) {
            None => mismatches.push(format!("{}.{} missing in atomio::sys", ty, field)),
            Some(&(ro, rs, _)) if (ro, rs) != (*off, *size) => mismatches.push(format!(
                "{}.{}: C offset {} size {}, Rust offset {} size {}",
                ty, field, off, size, ro, rs
            )),
            _ => {}
        }
    }
    // Both directions: a field the Rust side lists but C does not is stale too.
    for (ty, field) in r.keys() {
        if !c.iter().any(|(t, f, _, _)| t == ty && f == field) {
            mismatches.push(format!("{}.{} not in the C helper's list", ty, field));
        }
    }
    assert!(
        mismatches.is_empty(),
        "layout mismatches:\n{}",
        mismatches.join("\n")
    );
}

/// The helper's field list is written by hand too: a field left out of it would be left out of
/// the comparison above as well. So the listed fields, each at the next offset its alignment
/// allows, must cover each struct exactly; a field missing from the list shows as a gap.
#[test]
fn helper_fields_tile_each_struct() {
    let c = __layout::fields();
    assert!(!c.is_empty(), "layout helper is a stub: {}", __layout::NOTE);
    let r = rust_layout();
    let mut structs: BTreeMap<String, Vec<(usize, usize, String)>> = BTreeMap::new();
    for (ty, field, off, size) in &c {
        if !field.is_empty() {
            structs
                .entry(ty.clone())
                .or_default()
                .push((*off, *size, field.clone()));
        }
    }
    let mut gaps = Vec::new();
    for (ty, mut fields) in structs {
        fields.sort();
        let mut end = 0usize;
        for (off, size, field) in &fields {
            let align = r[&(ty.clone(), field.clone())].2;
            let want = (end + align - 1) / align * align;
            if *off != want {
                gaps.push(format!(
                    "{}: {} at {}, expected {}: a field is missing",
                    ty, field, off, want
                ));
            }
            end = off + size;
        }
        let (_, total, align) = r[&(ty.clone(), String::new())];
        if total != (end + align - 1) / align * align {
            gaps.push(format!("{}: fields end at {} of {}", ty, end, total));
        }
    }
    assert!(gaps.is_empty(), "{}", gaps.join("\n"));
}

/// The experimental statx mirror is the end of atomio_caps: everything before it is the
/// stable layout a caller without ATOMIO_EXPERIMENTAL gets.
#[test]
fn caps_statx_tail_is_last() {
    let c = __layout::fields();
    assert!(!c.is_empty(), "layout helper is a stub: {}", __layout::NOTE);
    let tail = [
        "statx_mask",
        "dio_mem_align",
        "statx_attributes",
        "dio_offset_align",
        "dio_read_offset_align",
        "unit_min",
        "unit_max",
        "segments_max",
        "unit_max_opt",
    ];
    let caps: Vec<_> = c
        .iter()
        .filter(|(t, f, _, _)| t == "atomio_caps" && !f.is_empty())
        .collect();
    let first = caps
        .iter()
        .filter(|(_, f, _, _)| tail.contains(&f.as_str()))
        .map(|(_, _, off, _)| *off)
        .min()
        .expect("statx fields in the helper");
    for (_, f, off, _) in &caps {
        assert_eq!(
            tail.contains(&f.as_str()),
            *off >= first,
            "atomio_caps.{}",
            f
        );
    }
}

#[test]
fn constants_match_c() {
    let c: BTreeMap<String, i64> = __layout::consts().into_iter().collect();
    assert!(!c.is_empty(), "layout helper is a stub: {}", __layout::NOTE);
    assert_eq!(rust_consts(), c);
}

#[test]
fn enum_newtypes_carry_the_c_values() {
    let c: BTreeMap<String, i64> = __layout::consts().into_iter().collect();
    for p in atomio::WritePath::ALL {
        let key = format!("ATOMIO_PATH_{}", p.name());
        assert_eq!(c[&key], p.raw() as i64, "{}", key);
    }
    for s in atomio::Submitter::ALL {
        assert_eq!(c[&format!("ATOMIO_SUBMIT_{}", s.name())], s.raw() as i64);
    }
    for s in atomio::IoStyle::ALL {
        assert_eq!(c[&format!("ATOMIO_IO_{}", s.name())], s.raw() as i64);
    }
    for s in atomio::Policy::ALL {
        assert_eq!(c[&format!("ATOMIO_POLICY_{}", s.name())], s.raw() as i64);
    }
    // The doublewrite modes are named by the crate, not the library: every one the header
    // has, under its own name.
    let modes: Vec<String> = atomio::DoublewriteMode::ALL
        .iter()
        .map(|m| {
            let key = format!("ATOMIO_DOUBLEWRITE_{}", m.name());
            assert_eq!(c.get(&key), Some(&(m.raw() as i64)), "{}", key);
            key
        })
        .collect();
    let header_modes: Vec<&String> = c
        .keys()
        .filter(|k| k.starts_with("ATOMIO_DOUBLEWRITE_"))
        .collect();
    assert_eq!(header_modes.len(), modes.len(), "{:?}", header_modes);
    // The known paths are the header's paths, and all fit the fixed room of atomio_stats.
    let header_paths = c.keys().filter(|k| k.starts_with("ATOMIO_PATH_")).count();
    assert_eq!(atomio::WritePath::ALL.len(), header_paths);
    assert!(atomio::WritePath::ALL.len() as i64 <= c["ATOMIO_STATS_PATHS"]);
}
