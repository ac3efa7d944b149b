"""Exceptions and warnings: one class per kind of refusal the library reports."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple


class VerificationError(Exception):
    """The model must not be loaded (or the check could not run)."""

    #: The library's name for the kind of refusal.
    kind: str = "usage"

    def __init__(self, message: str, info: Optional[Dict[str, Any]] = None) -> None:
        super().__init__(message)
        self.message = message
        self.info: Dict[str, Any] = dict(info or {})


class TamperedError(VerificationError):
    """Bytes, sizes or the set of files differ from what was signed."""

    kind = "tampered"

    def __init__(self, message: str, info: Optional[Dict[str, Any]] = None) -> None:
        super().__init__(message, info)
        #: The signed file (path relative to the model root) that differs, when known.
        self.file: Optional[str] = self.info.get("file")
        #: The tensor whose bytes differ, when the difference is in one tensor.
        self.tensor: Optional[str] = self.info.get("tensor")


class UntrustedError(VerificationError):
    """No valid signature file, a bad signature, or too few trusted signers."""

    kind = "untrusted"


@dataclass(frozen=True)
class RevocationHit:
    """One revocation entry that matches the model."""

    reason: str
    issuer: str
    evidence: Optional[str]
    index: int
    matched: str


class RevokedError(VerificationError):
    """A revocation entry matches the model, its signer or its content."""

    kind = "revoked"

    def __init__(self, message: str, info: Optional[Dict[str, Any]] = None) -> None:
        super().__init__(message, info)
        #: Every matching entry.
        self.hits: List[RevocationHit] = [RevocationHit(**h) for h in self.info.get("hits", [])]
        first = self.hits[0] if self.hits else None
        #: The reason of the (first) deciding entry.
        self.reason: Optional[str] = first.reason if first else None
        #: The key id (hex) of the issuer who revoked.
        self.issuer: Optional[str] = first.issuer if first else None
        #: The evidence URL or text the issuer gave, if any.
        self.evidence: Optional[str] = first.evidence if first else None


class RevocationStatusUnknown(VerificationError):
    """Revocation status could not be established (no state, stale, clock, sync failed)."""

    kind = "status-unknown"


class PolicyError(VerificationError):
    """The check could not run: a bad policy, bad arguments, an unknown tensor."""

    kind = "usage"


class VerificationWarning(UserWarning):
    """Warn mode: what enforce mode would have refused. `.error` is that exception."""

    def __init__(self, error: VerificationError) -> None:
        super().__init__(f"weightseal ({error.kind}, warn mode, loading anyway): {error}")
        self.error = error


_CLASSES = {
    "tampered": TamperedError,
    "untrusted": UntrustedError,
    "revoked": RevokedError,
    "status-unknown": RevocationStatusUnknown,
    "usage": PolicyError,
}


def from_native(args: Tuple[str, str, Dict[str, Any]]) -> VerificationError:
    """The exception for a native `(kind, message, info)` triple."""
    kind, message, info = args
    return _CLASSES.get(kind, VerificationError)(message, info)
