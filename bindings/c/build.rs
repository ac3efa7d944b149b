//! Regenerates `include/weightseal.h` from the exports with cbindgen. The header is
//! checked in; `ci.sh` rebuilds and fails if git sees it change (a stale header).

use std::path::Path;

fn main() {
    let crate_dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let crate_dir = Path::new(&crate_dir);
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).expect("bindings/c/cbindgen.toml");
    let header = cbindgen::generate_with_config(crate_dir, config).expect("cbindgen could not read src/");
    let out = crate_dir.join("include").join("weightseal.h");
    // Write only on change, so an unchanged header keeps its mtime (and builds that
    // depend on it are not redone).
    let mut text = Vec::new();
    header.write(&mut text);
    if std::fs::read(&out).ok().as_deref() != Some(&text[..]) {
        std::fs::write(&out, &text).expect("cannot write include/weightseal.h");
    }
}
