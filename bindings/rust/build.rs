// SPDX-License-Identifier: MIT
//! Links libatomio and builds the test-only layout helper.
//!
//! The library is found through ATOMIO_LIB_DIR (the directory holding libatomio.so, e.g.
//! `build/libatomio`), else pkg-config's `atomio` module, else the linker's default path.
//! The layout helper (`bindings/layout/atomio_layout.c`) is compiled with the system C
//! compiler (CC or `cc`) against the header found through ATOMIO_INCLUDE_DIR, the source
//! tree, or pkg-config; tests compare the hand-written `sys` structs with its numbers.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    for v in [
        "ATOMIO_LIB_DIR",
        "ATOMIO_INCLUDE_DIR",
        "PKG_CONFIG_PATH",
        "CC",
    ] {
        println!("cargo:rerun-if-env-changed={}", v);
    }
    println!("cargo:rerun-if-changed=build.rs");
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());

    let pc_include = link_library();
    build_layout_helper(&manifest, &out, pc_include);
}

/// link_library() -- emit the link directives; return pkg-config's include dirs if it was used.
fn link_library() -> Vec<PathBuf> {
    if let Some(dir) = env::var_os("ATOMIO_LIB_DIR").filter(|d| !d.is_empty()) {
        let dir = PathBuf::from(dir);
        if !dir.join("libatomio.so").exists() {
            println!(
                "cargo:warning=ATOMIO_LIB_DIR={} holds no libatomio.so",
                dir.display()
            );
        }
        link_dir(&dir);
        println!("cargo:rustc-link-lib=dylib=atomio");
        return Vec::new();
    }
    if let Some((dirs, incs)) = pkg_config() {
        for d in &dirs {
            link_dir(d);
        }
        println!("cargo:rustc-link-lib=dylib=atomio");
        return incs;
    }
    println!(
        "cargo:warning=libatomio: ATOMIO_LIB_DIR unset and pkg-config has no atomio module; \
         linking -latomio from the default library path"
    );
    println!("cargo:rustc-link-lib=dylib=atomio");
    Vec::new()
}

/// link_dir() -- search `dir` at link time, and at run time for this package's tests and
/// examples (rpath), so `cargo test` needs no LD_LIBRARY_PATH.
fn link_dir(dir: &Path) {
    println!("cargo:rustc-link-search=native={}", dir.display());
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", dir.display());
}

/// pkg_config() -- (library dirs, include dirs) of the `atomio` module, or None.
fn pkg_config() -> Option<(Vec<PathBuf>, Vec<PathBuf>)> {
    let o = Command::new("pkg-config")
        .args(["--libs-only-L", "--cflags-only-I", "atomio"])
        .output()
        .ok()?;
    if !o.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    let mut libs = Vec::new();
    let mut incs = Vec::new();
    for tok in text.split_whitespace() {
        if let Some(d) = tok.strip_prefix("-L") {
            libs.push(PathBuf::from(d));
        } else if let Some(d) = tok.strip_prefix("-I") {
            incs.push(PathBuf::from(d));
        }
    }
    Some((libs, incs))
}

/// build_layout_helper() -- compile atomio_layout.c into libatomio_layout.a. When the source
/// or the header is missing (a copy of the crate outside the tree), compile a stub that
/// reports no entries; the layout test then fails naming the reason rather than passing.
fn build_layout_helper(manifest: &Path, out: &Path, pc_include: Vec<PathBuf>) {
    let src = manifest.join("../layout/atomio_layout.c");
    println!("cargo:rerun-if-changed={}", src.display());
    let mut includes: Vec<PathBuf> = Vec::new();
    if let Some(d) = env::var_os("ATOMIO_INCLUDE_DIR").filter(|d| !d.is_empty()) {
        includes.push(PathBuf::from(d));
    }
    includes.push(manifest.join("../../include"));
    includes.extend(pc_include);
    includes.push(PathBuf::from("/usr/local/include"));
    includes.push(PathBuf::from("/usr/include"));
    let inc = includes.into_iter().find(|d| d.join("atomio.h").exists());
    if let Some(d) = &inc {
        println!("cargo:rerun-if-changed={}", d.join("atomio.h").display());
    }

    let (source, note) = match (inc.is_some(), src.exists()) {
        (true, true) => (src.clone(), String::new()),
        (have_inc, have_src) => {
            let why = if !have_src {
                format!("{} not found", src.display())
            } else {
                debug_assert!(!have_inc);
                "atomio.h not found (set ATOMIO_INCLUDE_DIR)".to_string()
            };
            let stub = out.join("atomio_layout_stub.c");
            fs::write(
                &stub,
                "#include <stddef.h>\n\
                 const void *atomio_layout_fields(size_t *n);\n\
                 const void *atomio_layout_consts(size_t *n);\n\
                 const void *atomio_layout_fields(size_t *n) { *n = 0; return NULL; }\n\
                 const void *atomio_layout_consts(size_t *n) { *n = 0; return NULL; }\n",
            )
            .unwrap();
            println!("cargo:warning=layout helper stubbed: {}", why);
            (stub, why)
        }
    };
    println!("cargo:rustc-env=ATOMIO_LAYOUT_NOTE={}", note);

    let cc = env::var("CC").unwrap_or_else(|_| "cc".to_string());
    let obj = out.join("atomio_layout.o");
    let mut cmd = Command::new(&cc);
    // The sys structs mirror what a caller that defines ATOMIO_EXPERIMENTAL gets.
    cmd.args(["-std=c11", "-O1", "-fPIC", "-DATOMIO_EXPERIMENTAL", "-c"]);
    if let Some(d) = &inc {
        cmd.arg("-I").arg(d);
    }
    cmd.arg(&source).arg("-o").arg(&obj);
    run(&mut cmd);
    let lib = out.join("libatomio_layout.a");
    let _ = fs::remove_file(&lib);
    run(Command::new("ar").arg("crs").arg(&lib).arg(&obj));
    println!("cargo:rustc-link-search=native={}", out.display());
    println!("cargo:rustc-link-lib=static=atomio_layout");
}

fn run(cmd: &mut Command) {
    let st = cmd
        .status()
        .unwrap_or_else(|e| panic!("cannot run {:?}: {}", cmd, e));
    assert!(st.success(), "{:?} failed: {}", cmd, st);
}
