#!/usr/bin/env python3
"""An independent check of spec/vectors/format-v1.json, written from spec/format.md alone.

It shares no code with the Rust implementation: third-party CBOR, BLAKE3 and ed25519
libraries recompute the chunk digests, file digests, manifest digest, canonical encodings,
key id and signature, so a bug that the Rust vector test would faithfully reproduce
(it generated the vectors) is caught here.

    python3 -m venv /tmp/ws-vectors && /tmp/ws-vectors/bin/pip install cbor2 blake3 cryptography
    /tmp/ws-vectors/bin/python spec/vectors/check_format_v1.py
"""
import json
import os
import struct
import sys

import blake3
import cbor2
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

HERE = os.path.dirname(os.path.abspath(__file__))
KIND = {"safetensors": 1, "gguf": 2, "raw": 3}
ROLE = {"header": 1, "tensor": 2, "data": 3}


def dk(context, data):
    return blake3.blake3(data, derive_key_context=context).digest()


def main():
    v = json.load(open(os.path.join(HERE, "format-v1.json")))
    failures = []

    def check(what, ok):
        print(("ok    " if ok else "FAIL  ") + what)
        if not ok:
            failures.append(what)

    manifest_bytes = bytes.fromhex(v["manifest"]["bytes_hex"])
    manifest = cbor2.loads(manifest_bytes)
    check("manifest is canonical CBOR (RFC 8949 core deterministic)", cbor2.dumps(manifest, canonical=True) == manifest_bytes)
    check("manifest version is 1", manifest["v"] == 1)
    for f, fv in zip(manifest["files"], v["files"]):
        content = bytes.fromhex(fv["content_hex"])
        offset, table = 0, struct.pack("<Q", f["size"]) + bytes([KIND[f["kind"]]]) + struct.pack("<Q", f.get("chunk_size", 0))
        for c in f["chunks"]:
            chunk = content[offset : offset + c["len"]]
            check(f"{f['path']}: chunk at {offset} digest is BLAKE3 of its bytes", blake3.blake3(chunk).digest() == c["digest"])
            name = c.get("name", "").encode()
            table += bytes([ROLE[c["kind"]]]) + struct.pack("<I", len(name)) + name + struct.pack("<Q", c["len"]) + c["digest"]
            offset += c["len"]
        check(f"{f['path']}: chunks tile the file", offset == len(content) == f["size"])
        check(f"{f['path']}: file digest", dk("weightseal v1 file digest", table) == f["digest"])
    digest = dk("weightseal v1 manifest digest", manifest_bytes)
    check("manifest digest", digest.hex() == v["manifest"]["digest"])

    seed = bytes.fromhex(v["key"]["seed"])
    private = Ed25519PrivateKey.from_private_bytes(seed)
    public_raw = private.public_key().public_bytes_raw()
    check("public key from seed", public_raw.hex() == v["key"]["public_key"])
    check("key id", dk("weightseal v1 ed25519 key id", public_raw).hex() == v["key"]["key_id"])
    message = b"weightseal v1 manifest signature\x00" + digest
    check("signed message", message.hex() == v["signed_message_hex"])
    signature = bytes.fromhex(v["signature_hex"])
    Ed25519PublicKey.from_public_bytes(public_raw).verify(signature, message)  # raises if invalid
    check("signature verifies (and ed25519 is deterministic)", private.sign(message) == signature)

    sig_file_bytes = bytes.fromhex(v["signature_file_hex"])
    sig_file = cbor2.loads(sig_file_bytes)
    check("signature file is canonical CBOR", cbor2.dumps(sig_file, canonical=True) == sig_file_bytes)
    check("signature file carries the exact manifest bytes", sig_file["manifest"] == manifest_bytes)
    check("signature file carries key and signature", sig_file["signatures"] == [{"key": public_raw, "sig": signature}])

    print(f"{len(failures)} failed" if failures else "all independent checks passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
