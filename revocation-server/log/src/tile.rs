//! What a log writes beside its tiles: the list of hash tiles an export publishes and the
//! hashes of proof documents. Paths, tile and document formats, and their decoding are
//! `weightseal_verifier::revocation::tile`.

use weightseal_verifier::revocation::merkle::Hash;
use weightseal_verifier::revocation::tile::{HashTileRef, TILE_WIDTH};

/// Every hash tile of a tree of `size` leaves, as a tlog-tiles log publishes it: the full
/// tiles at each level and, where the level does not end on a tile boundary, its partial
/// tile of width `floor(size / 256^L) mod 256`.
pub fn hash_tiles(size: u64) -> Vec<HashTileRef> {
    let mut out = Vec::new();
    let mut hashes = size;
    let mut level = 0u8;
    while hashes > 0 {
        for index in 0..hashes / TILE_WIDTH {
            out.push(HashTileRef {
                level,
                index,
                width: TILE_WIDTH,
            });
        }
        if !hashes.is_multiple_of(TILE_WIDTH) {
            out.push(HashTileRef {
                level,
                index: hashes / TILE_WIDTH,
                width: hashes % TILE_WIDTH,
            });
        }
        hashes /= TILE_WIDTH;
        level += 1;
    }
    out
}

/// Hex-encodes proof hashes for a document.
pub fn proof_to_hex(proof: &[Hash]) -> Vec<String> {
    proof.iter().map(hex::encode).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_tiles_of_a_tree() {
        // The tlog-tiles examples: 70,000 leaves are 273 full level-0 tiles, a partial one of
        // 112, one full level-1 tile, a partial one of 17 and a partial level-2 tile of 1.
        let tiles = hash_tiles(70_000);
        let count = |level: u8, width: u64| tiles.iter().filter(|t| t.level == level && t.width == width).count();
        assert_eq!(count(0, 256), 273);
        assert_eq!(count(0, 112), 1);
        assert_eq!(count(1, 256), 1);
        assert_eq!(count(1, 17), 1);
        assert_eq!(count(2, 1), 1);
        assert_eq!(tiles.len(), 277);
        // 256 leaves: a full level-0 tile and a partial level-1 tile of width 1.
        assert_eq!(
            hash_tiles(256),
            vec![
                HashTileRef {
                    level: 0,
                    index: 0,
                    width: 256
                },
                HashTileRef {
                    level: 1,
                    index: 0,
                    width: 1
                }
            ]
        );
        assert!(hash_tiles(0).is_empty());
    }
}
