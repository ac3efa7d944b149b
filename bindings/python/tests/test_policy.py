"""Policies: a file and the same policy in code decide alike; WEIGHTSEAL_POLICY; warn mode."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Callable, List, Optional, Type

import numpy as np
import pytest
import safetensors.numpy

import weightseal
from conftest import World, flip_bit_in_tensor


def write_policy(path: Path, keys: List[Path], threshold: int = 1, mode: str = "enforce") -> Path:
    rel = [k.name for k in keys]  # relative to the policy file's folder
    for k in keys:
        assert k.parent == path.parent
    path.write_text(f'mode = "{mode}"\ntrusted_keys = {rel!r}\nthreshold = {threshold}\n'.replace("'", '"'))
    return path


def outcome(fn: Callable[[], object]) -> Optional[Type[BaseException]]:
    try:
        fn()
        return None
    except weightseal.VerificationError as e:
        return type(e)


def test_policy_file_and_code_decide_alike(world: World) -> None:
    shard = world.shards(world.base)[0]
    cases = {
        "lab": ([world.lab.public], 1),
        "other": ([world.other.public], 1),
        "both, 2 of 2": ([world.lab.public, world.other.public], 2),
        "both, 1 of 2": ([world.lab.public, world.other.public], 1),
    }
    seen = set()
    for label, (keys, k) in cases.items():
        from_file = weightseal.Policy.from_file(write_policy(world.dir / f"{label}.toml", keys, k))
        in_code = weightseal.Policy(trusted_keys=keys, threshold=k)
        for what, call in {
            "verify": lambda p: weightseal.verify(world.base, policy=p),
            "load_file": lambda p: weightseal.load_file(shard, policy=p),
            "verify derived": lambda p: weightseal.verify(world.derived, policy=p),
        }.items():
            a, b = outcome(lambda: call(from_file)), outcome(lambda: call(in_code))
            assert a == b, f"{label} / {what}: file gives {a}, code gives {b}"
            seen.add(a)
    # Both successes and refusals were compared.
    assert None in seen and weightseal.UntrustedError in seen
    # And on tampered bytes.
    flip_bit_in_tensor(shard, "lm_head.weight" if "lm_head.weight" in safetensors.numpy.load_file(shard) else
                       sorted(safetensors.numpy.load_file(shard))[0])
    ff = weightseal.Policy.from_file(write_policy(world.dir / "t.toml", [world.lab.public]))
    fc = weightseal.Policy(trusted_keys=[world.lab.public])
    assert outcome(lambda: weightseal.load_file(shard, policy=ff)) is weightseal.TamperedError
    assert outcome(lambda: weightseal.load_file(shard, policy=fc)) is weightseal.TamperedError


def test_policy_from_the_environment(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(weightseal.POLICY_ENV, raising=False)
    with pytest.raises(weightseal.PolicyError) as e:
        weightseal.verify(world.base)
    assert weightseal.POLICY_ENV in str(e.value)
    monkeypatch.setenv(weightseal.POLICY_ENV, str(write_policy(world.dir / "env.toml", [world.lab.public])))
    assert weightseal.verify(world.base).signers == (world.lab.id,)
    monkeypatch.setenv(weightseal.POLICY_ENV, str(write_policy(world.dir / "env2.toml", [world.other.public])))
    with pytest.raises(weightseal.UntrustedError):
        weightseal.load_file(world.edge)


def test_bad_policy_is_a_policy_error(world: World) -> None:
    with pytest.raises(weightseal.PolicyError):
        weightseal.Policy(trusted_keys=[world.lab.public], threshold=2)
    with pytest.raises(weightseal.PolicyError):
        weightseal.Policy(trusted_keys=[world.lab.public], mode="lenient")
    with pytest.raises(weightseal.PolicyError):
        weightseal.Policy(trusted_keys=[world.dir / "missing.pub"])
    with pytest.raises(weightseal.PolicyError):
        weightseal.Policy.from_file(world.dir / "missing.toml")


def test_warn_mode_loads_tampered_bytes_and_warns(world: World) -> None:
    shard = world.shards(world.base)[0]
    names = sorted(safetensors.numpy.load_file(shard))
    victim = names[0]
    flip_bit_in_tensor(shard, victim)
    warn = weightseal.Policy(trusted_keys=[world.lab.public], mode="warn")
    assert warn.mode == "warn"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = weightseal.load_file(shard, policy=warn)
    ref = safetensors.numpy.load_file(shard)
    assert sorted(got) == names
    for name in names:
        if name != victim:
            assert got[name].tobytes() == ref[name].tobytes()
    found = [w.message for w in caught if isinstance(w.message, weightseal.VerificationWarning)]
    assert len(found) == 1, [str(w.message) for w in caught]
    assert isinstance(found[0].error, weightseal.TamperedError)
    assert found[0].error.tensor == victim


def test_warn_mode_loads_an_untrusted_model_and_warns(world: World) -> None:
    warn = weightseal.Policy(trusted_keys=[world.other.public], mode="warn")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = weightseal.load_file(world.edge, policy=warn)
        v = weightseal.verify(world.base, policy=warn)
    np.testing.assert_equal(got, safetensors.numpy.load_file(world.edge))
    kinds = [type(w.message.error) for w in caught if isinstance(w.message, weightseal.VerificationWarning)]
    assert kinds and all(k is weightseal.UntrustedError for k in kinds), kinds
    assert any(isinstance(f, weightseal.UntrustedError) for f in v.findings)
    # The same policy in enforce mode refuses.
    with pytest.raises(weightseal.UntrustedError):
        weightseal.load_file(world.edge, policy=weightseal.Policy(trusted_keys=[world.other.public]))
