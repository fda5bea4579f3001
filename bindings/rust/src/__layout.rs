// SPDX-License-Identifier: MIT
//! Test support, not API: the C compiler's layout of atomio.h, from the helper build.rs
//! compiles (`bindings/layout/atomio_layout.c`). Used by `tests/layout.rs`.

use std::ffi::CStr;
use std::os::raw::c_char;

#[repr(C)]
struct Field {
    ty: *const c_char,
    field: *const c_char,
    offset: u64,
    size: u64,
}

#[repr(C)]
struct Const {
    name: *const c_char,
    value: i64,
}

extern "C" {
    fn atomio_layout_fields(n: *mut usize) -> *const Field;
    fn atomio_layout_consts(n: *mut usize) -> *const Const;
}

/// Why the helper is a stub ("" when it is the real one).
pub const NOTE: &str = env!("ATOMIO_LAYOUT_NOTE");

fn s(p: *const c_char) -> String {
    // SAFETY: the helper's tables hold static string literals.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

/// (struct, field or "", offset, size) for every public struct and field.
pub fn fields() -> Vec<(String, String, usize, usize)> {
    let mut n = 0usize;
    // SAFETY: returns a static table of n entries.
    let p = unsafe { atomio_layout_fields(&mut n) };
    (0..n)
        .map(|i| {
            // SAFETY: i < n.
            let f = unsafe { &*p.add(i) };
            (s(f.ty), s(f.field), f.offset as usize, f.size as usize)
        })
        .collect()
}

/// (name, value) for every public constant.
pub fn consts() -> Vec<(String, i64)> {
    let mut n = 0usize;
    // SAFETY: returns a static table of n entries.
    let p = unsafe { atomio_layout_consts(&mut n) };
    (0..n)
        .map(|i| {
            // SAFETY: i < n.
            let c = unsafe { &*p.add(i) };
            (s(c.name), c.value)
        })
        .collect()
}
