"""Loading through weightseal gives exactly what safetensors gives, and refuses what it must."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import safetensors
import safetensors.numpy

import weightseal
from conftest import World, flip_bit_in_tensor, keygen, run, sign


def lab_policy(world: World, **kw) -> weightseal.Policy:
    return weightseal.Policy(trusted_keys=[world.lab.public], **kw)


def assert_same_arrays(ours: dict, theirs: dict) -> None:
    assert sorted(ours) == sorted(theirs)
    for name, expected in theirs.items():
        got = ours[name]
        assert got.dtype == expected.dtype, name
        assert got.shape == expected.shape, name
        assert got.tobytes() == expected.tobytes(), name


def reference_models(world: World):
    """(model file, policy) for every signed weight file of the fixtures: both shards of
    a signed folder (the folder's signature found by walking up), and a single file."""
    both = weightseal.Policy(trusted_keys=[world.lab.public, world.other.public])
    for shard in world.shards(world.base) + world.shards(world.derived):
        yield shard, both
    yield world.edge, both


def test_load_file_equals_safetensors_numpy(world: World) -> None:
    n = 0
    for path, policy in reference_models(world):
        assert_same_arrays(weightseal.load_file(path, policy=policy), safetensors.numpy.load_file(path))
        n += 1
    assert n == 5


def test_safe_open_equals_safetensors_safe_open(world: World) -> None:
    for path, policy in reference_models(world):
        with weightseal.safe_open(path, framework="numpy", policy=policy) as ours, safetensors.safe_open(
            path, framework="np"
        ) as theirs:
            assert ours.keys() == list(theirs.keys())
            assert ours.metadata() == theirs.metadata()
            for name in theirs.keys():
                a, b = ours.get_tensor(name), theirs.get_tensor(name)
                assert (a.dtype, a.shape, a.tobytes()) == (b.dtype, b.shape, b.tobytes()), name


def test_edge_case_dtypes_scalar_and_empty_tensor(world: World) -> None:
    got = weightseal.load_file(world.edge, policy=lab_policy(world))
    dtypes = {str(a.dtype) for a in got.values()}
    assert {"float64", "float32", "float16", "int64", "int8", "uint8", "bool"} <= dtypes
    assert any(a.shape == () for a in got.values()), "the 0-d scalar"
    assert any(a.shape == (0, 4) for a in got.values()), "the empty tensor"


def test_verify_reports_what_it_checked(world: World) -> None:
    v = weightseal.verify(world.base, policy=lab_policy(world))
    assert v.signers == (world.lab.id,)
    assert len(v.manifest_digest) == 64
    total = sum(p.stat().st_size for p in world.base.iterdir() if p.name != "weightseal.sig")
    assert v.bytes_verified == total
    assert v.revocation.state == "not-configured"
    assert v.findings == ()
    # Only two tensors: cost follows the bytes of those tensors (plus their headers).
    part = weightseal.verify(world.base, policy=lab_policy(world), tensors=["lm_head.weight", "model.norm.weight"])
    assert 0 < part.bytes_verified < v.bytes_verified
    assert part.manifest_digest == v.manifest_digest


def test_flipped_bit_is_caught_by_that_tensors_get_tensor_only(world: World) -> None:
    shard = world.shards(world.base)[0]
    with safetensors.safe_open(shard, framework="np") as f:
        names = list(f.keys())
    victim = names[len(names) // 2]
    flip_bit_in_tensor(shard, victim, byte=3, bit=5)
    clean = 0
    with weightseal.safe_open(shard, policy=lab_policy(world)) as f:
        for name in f.keys():
            if name == victim:
                with pytest.raises(weightseal.TamperedError) as e:
                    f.get_tensor(name)
                assert e.value.tensor == victim
                assert e.value.file == shard.name
                assert victim in str(e.value) and shard.name in str(e.value)
            else:
                f.get_tensor(name)
                clean += 1
    assert clean == len(names) - 1
    with pytest.raises(weightseal.TamperedError):
        weightseal.load_file(shard, policy=lab_policy(world))
    with pytest.raises(weightseal.TamperedError) as e:
        weightseal.verify(world.base, policy=lab_policy(world))
    assert e.value.file == shard.name


def test_unsigned_file_beside_the_weights_is_refused(world: World) -> None:
    (world.base / "modeling_custom.py").write_text("import os\n")
    with pytest.raises(weightseal.TamperedError) as e:
        weightseal.verify(world.base, policy=lab_policy(world))
    assert "modeling_custom.py" in str(e.value)


def test_wrong_key_is_untrusted(world: World) -> None:
    wrong = weightseal.Policy(trusted_keys=[world.other.public])
    shard = world.shards(world.base)[0]
    with pytest.raises(weightseal.UntrustedError):
        weightseal.verify(world.base, policy=wrong)
    with pytest.raises(weightseal.UntrustedError):
        weightseal.safe_open(shard, policy=wrong)
    with pytest.raises(weightseal.UntrustedError):
        weightseal.load_file(world.edge, policy=wrong)


def test_threshold_not_met_is_untrusted(world: World) -> None:
    two = weightseal.Policy(trusted_keys=[world.lab.public, world.other.public], threshold=2)
    with pytest.raises(weightseal.UntrustedError) as e:
        weightseal.verify(world.base, policy=two)
    assert "2 required" in str(e.value)
    # A second signature meets it.
    run("weightseal", "cosign", world.base, "--key", world.other.private)
    v = weightseal.verify(world.base, policy=two)
    assert sorted(v.signers) == sorted([world.lab.id, world.other.id])


def test_unsigned_model_is_untrusted(world: World, tmp_path: Path) -> None:
    plain = tmp_path / "plain.safetensors"
    safetensors.numpy.save_file({"w": np.arange(6, dtype=np.float32).reshape(2, 3)}, str(plain))
    with pytest.raises(weightseal.UntrustedError):
        weightseal.load_file(plain, policy=lab_policy(world))


def test_signature_in_another_place(world: World, tmp_path: Path) -> None:
    elsewhere = tmp_path / "sigs" / "edge.sig"
    elsewhere.parent.mkdir()
    shutil.move(str(world.edge) + ".weightseal.sig", elsewhere)
    with pytest.raises(weightseal.UntrustedError):
        weightseal.load_file(world.edge, policy=lab_policy(world))
    got = weightseal.load_file(world.edge, policy=lab_policy(world), signature=elsewhere)
    assert_same_arrays(got, safetensors.numpy.load_file(world.edge))


def test_unknown_tensor_is_a_key_error(world: World) -> None:
    with weightseal.safe_open(world.edge, policy=lab_policy(world)) as f:
        with pytest.raises(KeyError):
            f.get_tensor("no.such.tensor")


def test_a_model_signed_by_another_tool_run(world: World, tmp_path: Path) -> None:
    """A folder written by the reference safetensors writer at test time (not a fixture)
    and signed: same arrays as safetensors."""
    folder = tmp_path / "fresh"
    folder.mkdir()
    rng = np.random.default_rng(7)
    tensors = {f"layer.{i}.weight": rng.standard_normal((64, 32)).astype(np.float32) for i in range(4)}
    safetensors.numpy.save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "np"})
    key = keygen(tmp_path, "fresh.key")
    sign(folder, key)
    got = weightseal.load_file(folder / "model.safetensors", policy=weightseal.Policy(trusted_keys=[key.public]))
    assert_same_arrays(got, tensors)


def test_torch_framework(world: World) -> None:
    torch = pytest.importorskip("torch", reason="torch is not installed: framework='pt' untested here")
    got = weightseal.load_file(world.edge, framework="pt", policy=lab_policy(world))
    ref = safetensors.numpy.load_file(world.edge)
    for name, t in got.items():
        assert isinstance(t, torch.Tensor)
        assert t.numpy().tobytes() == ref[name].tobytes()


def test_native_read_into_refuses_unusable_buffers(world: World) -> None:
    """The native read-into takes only a writable, contiguous byte buffer of exactly the
    tensor's length; anything else is refused before a byte is read."""
    opened = lab_policy(world)._native.open(str(world.edge))
    with safetensors.safe_open(world.edge, framework="np") as f:
        name = next(k for k in f.keys() if f.get_tensor(k).nbytes >= 8)
        expected = f.get_tensor(name).tobytes()
    n = opened.tensor_len(name)
    assert n == len(expected)
    with pytest.raises(ValueError, match="read-only"):
        opened.read_tensor_into(name, bytes(n))
    with pytest.raises(ValueError, match="contiguous"):
        opened.read_tensor_into(name, np.zeros(2 * n, dtype=np.uint8)[::2])
    with pytest.raises(weightseal._native.Refusal):
        opened.read_tensor_into(name, bytearray(n + 1))
    buf = bytearray(n)
    assert opened.read_tensor_into(name, buf) is None
    assert bytes(buf) == expected
