#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets under fuzz/corpus/<target>/ from the spec
vectors (spec/vectors), the reference writers' fixtures (tests/fixtures) and the spec's
examples. Standard library only. The corpora are generated, not committed; the committed
regression inputs live in fuzz/regressions/<target>/.

    python3 fuzz/make_corpus.py            # (re)writes fuzz/corpus/

Seeds are framed the way each harness reads its input (see fuzz/fuzz_targets/*.rs): a
leading mode byte, 2-byte little-endian length-prefixed parts, 8-byte integers.
"""

import hashlib
import json
import pathlib
import re
import shutil
import struct

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "fuzz" / "corpus"


def cbor(value):
    """Deterministic CBOR (RFC 8949 §4.2.1) of ints, bytes, text, lists and text-keyed dicts."""

    def head(major, n):
        if n < 24:
            return bytes([major << 5 | n])
        for extra, fmt in ((24, ">B"), (25, ">H"), (26, ">I"), (27, ">Q")):
            if n < 1 << (8 * struct.calcsize(fmt)):
                return bytes([major << 5 | extra]) + struct.pack(fmt, n)
        raise ValueError(n)

    if isinstance(value, bool):
        return bytes([0xF5 if value else 0xF4])
    if isinstance(value, int):
        return head(0, value) if value >= 0 else head(1, -1 - value)
    if isinstance(value, bytes):
        return head(2, len(value)) + value
    if isinstance(value, str):
        b = value.encode()
        return head(3, len(b)) + b
    if isinstance(value, list):
        return head(4, len(value)) + b"".join(cbor(v) for v in value)
    if isinstance(value, dict):
        items = sorted((cbor(k), cbor(v)) for k, v in value.items())
        return head(5, len(items)) + b"".join(k + v for k, v in items)
    raise TypeError(type(value))


def part(b):
    return struct.pack("<H", len(b)) + b


def u64(n):
    return struct.pack("<Q", n % (1 << 64))


def write(target, name, data):
    d = OUT / target
    d.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    (d / name).write_bytes(data)


def note_body(note):
    """The body of a signed note: everything before the blank line."""
    return note.split("\n\n", 1)[0] + "\n"


def main():
    if OUT.exists():
        shutil.rmtree(OUT)
    fmt = json.loads((ROOT / "spec/vectors/format-v1.json").read_text())
    rev = json.loads((ROOT / "spec/vectors/revocation/vectors.json").read_text())
    tree = rev["tree"]

    # Layouts: the fixtures, each JSON header alone, and the format vectors' files.
    for f in sorted((ROOT / "tests/fixtures/safetensors").rglob("*.safetensors")):
        data = f.read_bytes()
        name = f.relative_to(ROOT / "tests/fixtures/safetensors").as_posix().replace("/", "_")
        write("safetensors_layout", name, data)
        if len(data) >= 8:
            (n,) = struct.unpack("<Q", data[:8])
            write("safetensors_layout", name + ".header", data[8 : 8 + n])
    for f in sorted((ROOT / "tests/fixtures/gguf").glob("*.gguf")):
        data = f.read_bytes()
        write("gguf_layout", f.name, data)
        # A prefix, as the scanner first reads a large file.
        write("gguf_layout", f.name + ".prefix", data[:4096])
    for v in fmt["files"]:
        target = {"safetensors": "safetensors_layout", "gguf": "gguf_layout"}.get(v["kind"])
        if target:
            write(target, "vector_" + v["path"].replace("/", "_"), bytes.fromhex(v["content_hex"]))

    # Manifest, signature file, CBOR.
    manifest = bytes.fromhex(fmt["manifest"]["bytes_hex"])
    sigfile = bytes.fromhex(fmt["signature_file_hex"])
    write("manifest", "vector", manifest)
    write("cbor", "manifest", manifest)
    write("cbor", "signature_file", sigfile)
    write("signature_file", "vector", b"\x00" + sigfile)
    write("signature_file", "vector_manifest_signed_in_harness", b"\x01" + manifest)
    for i, n in enumerate(fmt["negative"]):
        data = bytes.fromhex(n["input_hex"])
        if n["target"] == "manifest":
            write("manifest", f"negative_{i}", data)
            write("cbor", f"negative_{i}", data)
        elif n["target"] == "signature_file":
            write("signature_file", f"negative_{i}", b"\x00" + data)
        elif n["target"] in ("safetensors", "gguf"):
            write(n["target"] + "_layout", f"negative_{i}", data)

    # Revocation entries and submissions.
    for i, e in enumerate(rev["entries"]):
        entry = bytes.fromhex(e["entry_hex"])
        signed = bytes.fromhex(e["signed_entry_hex"])
        write("revocation_entry", f"entry_{i}", entry)
        write("revocation_entry", f"signed_{i}", signed)
        write("cbor", f"signed_entry_{i}", signed)
        write("submission", f"single_{i}", cbor({"entry": signed}))
        write("server_request", f"submit_{i}", b"\x00" + cbor({"entry": signed}))
        write("server_request", f"signed_in_harness_{i}", b"\x02" + entry)
    for i, k in enumerate(rev["key_rule"]):
        write("revocation_entry", f"key_rule_{i}", bytes.fromhex(k["signed_entry_hex"]))
    batch = bytes.fromhex(rev["batch_submission"]["hex"])
    write("submission", "batch", batch)
    write("server_request", "submit_batch", b"\x00" + batch)
    for i, n in enumerate(rev["negative"]):
        data = n["hex"] if "hex" in n else ""
        kind = n["kind"]
        raw = bytes.fromhex(data) if re.fullmatch(r"([0-9a-f]{2})*", data) else data.encode()
        target = {
            "entry": "revocation_entry",
            "signed_entry": "revocation_entry",
            "tile": "tile",
        }.get(kind)
        if target == "tile":
            write("tile", f"negative_{i}", u64(0) + b"\x02" + part(b"tile/entries/000.p/3") + raw)
        elif target:
            write(target, f"negative_{i}", raw)
        elif kind == "checkpoint_note":
            write("signed_note", f"negative_{i}", b"\x00" + raw)
        elif kind == "snapshot_body":
            write("signed_note", f"negative_{i}", b"\x01" + raw)

    # Signed notes: whole notes, and bodies for the harness to sign.
    for name in ("checkpoint_note", "snapshot_note"):
        note = tree[name].encode()
        write("signed_note", name, b"\x00" + note)
        write("signed_note", name + "_body", b"\x01" + note_body(tree[name]).encode())

    # Tiles and the publication.
    tile = bytes.fromhex(tree["tile_hex"])
    size = tree["size"]
    write("tile", "vector", u64(0) + bytes([size - 1]) + part(tree["tile_path"].encode()) + tile)
    publication = cbor({"checkpoint": tree["checkpoint_note"], "snapshot": tree["snapshot_note"]})
    write("tile", "publication", u64(0) + b"\xff" + part(b"tile/entries/x001/002") + publication)

    # Proofs: consistency 2 -> 4 of the vectors (the harness's tree is its own, so the
    # check fails past parsing; the parse and the arithmetic are what is fuzzed).
    proof = [h for h in tree["consistency_2_4_hex"]]
    doc = json.dumps({"old": 2, "new": 4, "proof": proof}).encode()
    write("proof", "consistency_2_4", u64(2) + u64(4) + doc)
    incl = json.dumps({"size": 4, "index": 2, "proof": proof}).encode()
    write("proof", "inclusion_4_2", u64(2) + u64(4) + incl)
    write("proof", "large_sizes", u64(1 | (1 << 40)) + u64((1 << 41) + 3) + doc)

    # Bundles and state folders from the vectors' tree (signed by the harness's log key).
    leaves = [bytes.fromhex(e["signed_entry_hex"]) for e in rev["entries"]]
    bundle = cbor(
        {"v": 1, "snapshot": tree["snapshot_note"], "checkpoint": tree["checkpoint_note"], "entries": leaves}
    )
    write("bundle", "vector", b"\x00" + bundle)
    write("cbor", "bundle", bundle)
    write("bundle", "leaves_signed_in_harness", b"\x01" + b"".join(part(bytes.fromhex(e["entry_hex"])) for e in rev["entries"]))
    entries_log = b"".join(struct.pack(">I", len(l)) + l for l in leaves)
    state = cbor(
        {
            "v": 1,
            "snapshot": tree["snapshot_note"],
            "checkpoint": tree["checkpoint_note"],
            "size": size,
            "entries_len": len(entries_log),
        }
    )
    pinned = rev["keys"]["log_verifier_key"] + "\n"
    write("state_folder", "vector", b"\x00" + part(state) + part(entries_log) + part(b"") + part(pinned.encode()))
    write(
        "state_folder",
        "vector_misbehaved",
        b"\x00" + part(state) + part(entries_log) + part(b"equivocation\nnotes-1.txt\n") + part(b""),
    )
    write("state_folder", "synced_then_torn_append", b"\x01" + b"".join(part(l) for l in leaves) + part(b"") + b"\x00\x00\x01\x00abc")
    write("cbor", "state", state)

    # Ignore rules: the defaults the vectors sign, and the spec's patterns.
    rules = [".git/", "*.tmp", "**/__pycache__/", "weightseal.sig", "**/.cache/**"]
    paths = [f["path"] for f in fmt["files"]] + [".git/", "a/b/__pycache__/", "x.tmp", "deep/a/b/c/d/e.bin"]
    write("ignore_rules", "defaults", "\n".join(rules) + "\n\n" + "\n".join(paths) + "\n")
    write("ignore_rules", "globs", "**/*.bin\nmodel-*.safetensors\nsub/**/x?.tmp\n/root-only\n\nmodel-1.safetensors\na/keep.bin\nsub/a/b/x1.tmp\nroot-only\nsub/root-only\n")
    write("ignore_rules", "reserved", "[a]\n!b\n\na\n")

    # Keys: PEM public keys, note verifier keys.
    import base64

    pub = bytes.fromhex(fmt["key"]["public_key"])
    spki = bytes.fromhex("302a300506032b6570032100") + pub
    pem = "-----BEGIN PUBLIC KEY-----\n" + base64.b64encode(spki).decode() + "\n-----END PUBLIC KEY-----\n"
    write("keys", "pem", pem)
    write("keys", "note_key", rev["keys"]["log_verifier_key"] + "\n")
    write("keys", "both", pem + rev["keys"]["log_verifier_key"] + "\n")

    # Issuers file (the server's policy): the vectors' hub and lab issuer keys.
    hub_pub = rev["entries"][0]["issuer"]
    lab_pub = rev["entries"][2]["issuer"]
    issuers = {
        "issuers": [
            {"name": "hub.example", "role": "hub", "public_key": hub_pub},
            {
                "name": "lab.example",
                "role": "lab",
                "public_key": lab_pub,
                "signing_keys": [rev["keys"]["lab_signing_key_id"]],
            },
        ]
    }
    write("issuers_file", "two_issuers", json.dumps(issuers, indent=1))
    write("issuers_file", "pem_key", json.dumps({"issuers": [{"name": "hub", "role": "hub", "public_key": pem}]}))

    # Policy files: the TOML examples in spec/policy.md, and one naming the harness's key file.
    spec = (ROOT / "spec/policy.md").read_text()
    for i, block in enumerate(re.findall(r"```toml\n(.*?)```", spec, re.S)):
        write("policy_toml", f"spec_{i}", block)
    write(
        "policy_toml",
        "full",
        'mode = "enforce"\ntrusted_keys = ["lab.pub"]\nthreshold = 1\nunsigned_models = "refuse"\n'
        f'[revocations]\nsource = "https://revocations.example/"\nlog_key = "{rev["keys"]["log_verifier_key"]}"\n'
        'state = "state"\nmax_staleness_secs = 86400\n',
    )

    # Server GETs.
    for path in ("checkpoint", "v1/snapshot", "v1/publication", "tile/entries/000.p/4", "tile/entries/001",
                 "tile/0/000.p/4", "tile/1/000.p/1",
                 "v1/proof/consistency/0/0", "v1/proof/inclusion/1/0", "v1/health", "metrics"):
        write("server_request", "get_" + re.sub(r"[^a-z0-9]+", "_", path), b"\x01" + path.encode())

    total = sum(1 for _ in OUT.rglob("*") if _.is_file())
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in sorted(OUT.rglob("*")) if p.is_file())).hexdigest()
    print(f"wrote {total} seeds under {OUT.relative_to(ROOT)} (sha256 of all: {digest[:16]})")


if __name__ == "__main__":
    main()
