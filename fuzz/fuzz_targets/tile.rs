//! Entry bundles (`tile/entries/…`), tile paths and the publication document.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weightseal_verifier::revocation::tile::{decode_publication, decode_tile, encode_tile, TileRef};

fuzz_target!(|data: &[u8]| {
    let mut input = weightseal_fuzz::Input::new(data);
    let index = input.u64() % 1024;
    let width = u64::from(input.byte()) + 1;
    let path = input.part();
    let rest = input.rest();
    if let Ok(p) = std::str::from_utf8(path) {
        if let Some(t) = TileRef::parse_path(p) {
            assert_eq!(TileRef::parse_path(&t.path()), Some(t));
        }
    }
    if let Ok(tile) = TileRef::new(index, width.min(256)) {
        if let Ok(leaves) = decode_tile(rest, tile) {
            assert_eq!(encode_tile(&leaves).expect("decoded leaves encode"), rest);
        }
    }
    let _ = decode_publication(rest);
});
