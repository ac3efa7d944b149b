"""Revocations against a live `weightseal-server` on 127.0.0.1, and fail-closed status."""

from __future__ import annotations

import warnings

import pytest

import weightseal
from conftest import RevocationLog, World, free_port

EVIDENCE = "https://hub.example/reports/42"


def policy(world: World, source: str, log: RevocationLog, state: str, **kw) -> weightseal.Policy:
    return weightseal.Policy(
        trusted_keys=[world.lab.public, world.other.public],
        revocations=source,
        log_key=log.note_key,
        state=world.dir / "states" / state,
        **kw,
    )


def test_revoked_manifest_raises_revoked_error(world: World, revocation_log: RevocationLog) -> None:
    log = revocation_log
    p = policy(world, log.url, log, "rt")
    shard = world.shards(world.derived)[0]
    before = weightseal.verify(world.derived, policy=p)
    assert before.revocation.state == "not-revoked"
    assert before.revocation.snapshot_version is not None

    log.revoke(
        log.hub,
        "--manifest",
        world.derived / "weightseal.sig",
        "--reason",
        "guardrails-removed",
        "--evidence",
        EVIDENCE,
    )
    with pytest.raises(weightseal.RevokedError) as e:
        weightseal.verify(world.derived, policy=p)
    assert e.value.reason is not None and "guardrails-removed" in e.value.reason
    assert e.value.issuer == log.hub.id
    assert e.value.evidence == EVIDENCE
    assert e.value.hits and e.value.hits[0].matched
    with pytest.raises(weightseal.RevokedError):
        weightseal.safe_open(shard, policy=p)
    with pytest.raises(weightseal.RevokedError):
        weightseal.load_file(shard, policy=p)
    # The base model is not revoked.
    assert weightseal.verify(world.base, policy=p).revocation.state == "not-revoked"

    # The same policy as a file decides alike (keys and state relative to the file).
    (world.dir / "policy.toml").write_text(
        "\n".join(
            [
                'mode = "enforce"',
                f'trusted_keys = ["{world.lab.public.name}", "{world.other.public.name}"]',
                "threshold = 1",
                "[revocations]",
                f'source = "{log.url}"',
                f'log_key = "{log.note_key}"',
                'state = "states/rt"',
            ]
        )
        + "\n"
    )
    from_file = weightseal.Policy.from_file(world.dir / "policy.toml")
    with pytest.raises(weightseal.RevokedError) as e2:
        weightseal.verify(world.derived, policy=from_file)
    assert (e2.value.reason, e2.value.issuer, e2.value.evidence) == (e.value.reason, e.value.issuer, e.value.evidence)
    assert weightseal.verify(world.base, policy=from_file).revocation.state == "not-revoked"

    # Warn mode: loads, and says why enforce would not.
    w = policy(world, log.url, log, "rt", mode="warn")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = weightseal.load_file(shard, policy=w)
    assert got
    errors = [c.message.error for c in caught if isinstance(c.message, weightseal.VerificationWarning)]
    assert any(isinstance(err, weightseal.RevokedError) and err.issuer == log.hub.id for err in errors), errors


def test_unknown_revocation_status_is_refused(world: World) -> None:
    log = RevocationLog(world.dir / "log", [world.lab])  # never started: nothing listens
    dead = f"http://127.0.0.1:{free_port()}"
    p = policy(world, dead, log, "none")
    with pytest.raises(weightseal.RevocationStatusUnknown):
        weightseal.verify(world.base, policy=p)
    with pytest.raises(weightseal.RevocationStatusUnknown):
        weightseal.load_file(world.shards(world.base)[0], policy=p)
    # The named unsafe opt-out loads, and says the status is unknown.
    unsafe = policy(world, dead, log, "none", unsafe_ignore_revocation_status=True)
    assert weightseal.verify(world.base, policy=unsafe).revocation.state == "unknown"
    # Warn mode loads and warns.
    w = policy(world, dead, log, "none", mode="warn")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        v = weightseal.verify(world.base, policy=w)
    assert v.revocation.state == "unknown"
    assert any(
        isinstance(c.message, weightseal.VerificationWarning)
        and isinstance(c.message.error, weightseal.RevocationStatusUnknown)
        for c in caught
    )
