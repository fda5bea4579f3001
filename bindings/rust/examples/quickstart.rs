// SPDX-License-Identifier: MIT
//! The docs/bindings.md example as a program: `cargo run --example quickstart DIR`.
//! Uses a doublewrite store when this build has one, and goes on without one otherwise.

use atomio::{Ctx, CtxOptions, FileOptions, IoStyle, WriteFlags};
use std::path::PathBuf;

fn main() -> atomio::Result<()> {
    let dir = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| ".".to_string()));
    let path = dir.join("t1.ibd");
    std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .open(&path)
        .expect("create");
    let caps = atomio::probe(&path, 16384)?;
    println!(
        "{} ({}), AUTO -> {}",
        caps.direct_atomic, caps.reason_direct, caps.auto_path
    );

    std::fs::create_dir_all(dir.join("dblwr")).expect("store directory");
    let ctx = match Ctx::open(&CtxOptions::new().doublewrite_dir(dir.join("dblwr"))) {
        Err(e) if e.is_path_unavailable() => Ctx::open(&CtxOptions::new())?,
        r => r?,
    };
    let file = ctx.open_file(&path, &FileOptions::new(16384).io_style(IoStyle::DIRECT))?;
    let info = file.info()?;
    println!(
        "{} safe={} {}",
        info.path, info.torn_write_safe, info.reason
    );

    let mut page = ctx.page_alloc(16384, 1)?; // owned, aligned PageBuf: no bounce copy
    page.fill(0x5a);
    file.write(0, &page)?; // &[u8], length checked against page size
    file.write_batch(&[(1, &page[..]), (2, &page[..])], WriteFlags::NONE)?;
    file.sync()?;
    assert_eq!(file.read_vec(1)?, page.to_vec());
    println!(
        "{} pages via {}",
        file.stats()?.pages_on(info.path),
        info.path
    );

    match file.write(3, &[0u8; 100]) {
        Err(e) => println!("{} {} {}", e.code(), e.name(), e.message()),
        Ok(()) => unreachable!(),
    }
    drop(page);
    file.close()?;
    match ctx.recover() {
        Ok(report) => println!("{} pages restored", report.pages_restored),
        Err(e) => println!("recover: {}", e),
    }
    Ok(())
}
