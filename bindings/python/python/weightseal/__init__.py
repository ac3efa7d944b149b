"""weightseal: load model weights only as they were signed.

Every call takes a :class:`Policy` (trusted keys, threshold, revocation sources, enforce
or warn). With ``policy=None`` the policy file named by ``$WEIGHTSEAL_POLICY`` is used.
The decision itself (signature, trust, revocation status) is made by the Rust library
``weightseal-verifier``; this package translates arguments and results.

``safe_open`` and ``load_file`` follow ``safetensors``' interface; each tensor's bytes are
read straight into the returned array and checked against the signed digest as they
land, so what you get is what was signed, with one read of the file and no second pass.
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, TypeVar, Union

from . import _native
from .errors import (
    PolicyError,
    RevocationHit,
    RevocationStatusUnknown,
    RevokedError,
    TamperedError,
    UntrustedError,
    VerificationError,
    VerificationWarning,
    from_native,
)

__all__ = [
    "POLICY_ENV",
    "Policy",
    "PolicyError",
    "Revocation",
    "RevocationHit",
    "RevocationStatusUnknown",
    "RevokedError",
    "TamperedError",
    "UntrustedError",
    "Verified",
    "VerificationError",
    "VerificationWarning",
    "load_file",
    "safe_open",
    "verify",
]

#: The environment variable that names the policy file used when ``policy=None``.
POLICY_ENV: str = _native.POLICY_ENV

PathLike = Union[str, "os.PathLike[str]"]
T = TypeVar("T")

# The safetensors header limit (the format's own), for the unchecked warn-mode path.
_MAX_HEADER_BYTES = 100_000_000


def _call(fn: Callable[..., T], *args: Any) -> T:
    """Calls into the native module, turning its refusals into this package's exceptions."""
    try:
        return fn(*args)
    except _native.Refusal as e:
        raise from_native(e.args) from None


def _warn(finding: Optional[Tuple[str, str, Dict[str, Any]]], stacklevel: int = 3) -> None:
    if finding is not None:
        warnings.warn(VerificationWarning(from_native(finding)), stacklevel=stacklevel + 1)


class Policy:
    """What may be loaded: trusted keys and threshold, revocation sources, the mode.

    ``Policy(trusted_keys=["lab.key.pub"], threshold=1, revocations=None, log_key=None,
    state=None, mode="enforce")`` builds the same policy a file with those keys gives
    (``Policy.from_file``). ``revocations`` is a URL, a static-export folder or a bundle
    file; ``log_key`` is the log's note verifier key (a string, or a list of them);
    ``state`` is the folder where the library keeps synced state and pins.
    """

    __slots__ = ("_native",)

    def __init__(
        self,
        trusted_keys: Sequence[PathLike],
        threshold: int = 1,
        revocations: Optional[PathLike] = None,
        log_key: Union[None, str, Sequence[str]] = None,
        state: Optional[PathLike] = None,
        mode: str = "enforce",
        *,
        max_staleness_secs: Optional[int] = None,
        unsigned_models: Optional[str] = None,
        allow_unsigned_files_unsafe: bool = False,
        unsafe_ignore_revocation_status: bool = False,
    ) -> None:
        if isinstance(trusted_keys, (str, bytes, os.PathLike)):
            raise TypeError("trusted_keys is a list of public key files, not one path")
        if log_key is None:
            log_keys: List[str] = []
        elif isinstance(log_key, str):
            log_keys = [log_key]
        else:
            log_keys = list(log_key)
        self._native = _call(
            _native.Policy.build,
            [os.fspath(k) for k in trusted_keys],
            threshold,
            None if revocations is None else os.fspath(revocations),
            log_keys,
            None if state is None else os.fspath(state),
            mode,
            max_staleness_secs,
            unsigned_models,
            allow_unsigned_files_unsafe,
            unsafe_ignore_revocation_status,
        )

    @classmethod
    def _wrap(cls, native: Any) -> "Policy":
        p = cls.__new__(cls)
        p._native = native
        return p

    @classmethod
    def from_file(cls, path: PathLike) -> "Policy":
        """Reads a policy file (TOML, see the project's spec/policy.md)."""
        return cls._wrap(_call(_native.Policy.from_file, os.fspath(path)))

    @classmethod
    def from_env(cls) -> "Policy":
        """Reads the policy file named by ``$WEIGHTSEAL_POLICY``."""
        return cls._wrap(_call(_native.Policy.from_env))

    @property
    def mode(self) -> str:
        """``"enforce"`` or ``"warn"``."""
        return str(self._native.mode)

    def __repr__(self) -> str:
        return f"<weightseal.Policy mode={self.mode}>"


def _resolve(policy: Union[None, Policy, PathLike]) -> Policy:
    if policy is None:
        return Policy.from_env()
    if isinstance(policy, Policy):
        return policy
    return Policy.from_file(policy)


def _open(model: PathLike, policy: Union[None, Policy, PathLike], signature: Optional[PathLike]) -> Any:
    p = _resolve(policy)
    opened = _call(p._native.open, os.fspath(model), None if signature is None else os.fspath(signature))
    for finding in opened.warnings():
        _warn(finding, stacklevel=3)
    return opened


@dataclass(frozen=True)
class Revocation:
    """The revocation status the decision established.

    ``state`` is ``"not-configured"``, ``"not-revoked"``, ``"revoked"`` (warn mode only:
    enforce raises) or ``"unknown"`` (warn mode or the named unsafe opt-out).
    """

    state: str
    snapshot_version: Optional[int] = None
    fresh_until: Optional[int] = None
    reason: Optional[str] = None
    hits: Tuple[RevocationHit, ...] = ()

    @classmethod
    def _from_native(cls, d: Dict[str, Any]) -> "Revocation":
        return cls(
            state=d["state"],
            snapshot_version=d.get("snapshot_version"),
            fresh_until=d.get("fresh_until"),
            reason=d.get("reason"),
            hits=tuple(RevocationHit(**h) for h in d.get("hits", [])),
        )


@dataclass(frozen=True)
class Verified:
    """What a successful check proves.

    In warn mode, ``findings`` holds what enforce mode would have refused (each also
    went to :mod:`warnings`), and ``manifest_digest`` is None when no trusted manifest
    could be obtained.
    """

    manifest_digest: Optional[str]
    signers: Tuple[str, ...]
    bytes_verified: int
    revocation: Revocation
    findings: Tuple[VerificationError, ...] = field(default=())


def verify(
    model: PathLike,
    policy: Union[None, Policy, PathLike] = None,
    signature: Optional[PathLike] = None,
    tensors: Optional[Iterable[str]] = None,
) -> Verified:
    """Checks a model folder or file under ``policy``: all its bytes, or only ``tensors``.

    Raises a :class:`VerificationError` subclass on refusal (enforce mode).
    """
    opened = _open(model, policy, signature)
    names = None if tensors is None else [str(t) for t in tensors]
    v, findings = _call(opened.verify, names)
    for f in findings:
        _warn(f, stacklevel=2)
    # Everything warn mode let through: the decision's findings, then the byte checks'.
    errors = [from_native(f) for f in list(opened.warnings()) + list(findings)]
    signed = opened.signed()
    return Verified(
        manifest_digest=v["manifest_digest"] if v else (signed[0] if signed else None),
        signers=tuple(v["signers"] if v else (signed[1] if signed else ())),
        bytes_verified=int(v["bytes_verified"]) if v else 0,
        revocation=Revocation._from_native(opened.revocation()),
        findings=tuple(errors),
    )


# safetensors dtype names -> numpy dtypes (little-endian, as the format stores them).
_NP_DTYPES: Dict[str, str] = {
    "F64": "<f8",
    "F32": "<f4",
    "F16": "<f2",
    "I64": "<i8",
    "U64": "<u8",
    "I32": "<i4",
    "U32": "<u4",
    "I16": "<i2",
    "U16": "<u2",
    "I8": "i1",
    "U8": "u1",
    "BOOL": "?",
    "C64": "<c8",
}

# Names torch knows for dtypes numpy lacks.
_TORCH_ONLY = {"BF16": "bfloat16", "F8_E4M3": "float8_e4m3fn", "F8_E5M2": "float8_e5m2"}


def _framework(framework: str) -> str:
    if framework in ("numpy", "np"):
        return "numpy"
    if framework in ("pt", "torch"):
        try:
            import torch  # noqa: F401
        except ImportError as e:
            raise ImportError("framework='pt' needs torch, which is not importable") from e
        return "pt"
    raise ValueError(f"framework {framework!r} is not one of 'numpy', 'pt'")


def _parse_header(raw: bytes, where: str) -> Tuple[Dict[str, Dict[str, Any]], Optional[Dict[str, str]], int]:
    if len(raw) < 8:
        raise TamperedError(f"{where}: header shorter than its 8-byte length", {"file": where})
    n = int.from_bytes(raw[:8], "little")
    if 8 + n > len(raw):
        raise TamperedError(f"{where}: header length {n} runs past the header bytes", {"file": where})
    try:
        header = json.loads(raw[8 : 8 + n])
    except ValueError as e:
        raise TamperedError(f"{where}: header is not JSON: {e}", {"file": where}) from None
    metadata = header.pop("__metadata__", None)
    return header, metadata, 8 + n


def _read_header_unchecked(fd: int, where: str) -> bytes:
    first = os.pread(fd, 8, 0)
    if len(first) < 8:
        raise TamperedError(f"{where}: file too small to be safetensors", {"file": where})
    n = int.from_bytes(first, "little")
    if n > _MAX_HEADER_BYTES:
        raise TamperedError(f"{where}: header length {n} is over the limit", {"file": where})
    return first + os.pread(fd, n, 8)


class safe_open:
    """``safetensors.safe_open`` with each tensor checked as it is read.

    ``with weightseal.safe_open(path, framework="numpy", policy=...) as f:`` then
    ``f.keys()``, ``f.metadata()``, ``f.get_tensor(name)``. Opening decides whether the
    file may be loaded at all (signature, trust, revocations) and reads the header from
    signed bytes; ``get_tensor`` reads one tensor into a fresh array and checks exactly
    those bytes (``TamperedError`` naming the file and tensor on a mismatch). ``path``
    may be one shard of a signed folder.
    """

    def __init__(
        self,
        filename: PathLike,
        framework: str = "numpy",
        policy: Union[None, Policy, PathLike] = None,
        signature: Optional[PathLike] = None,
        device: str = "cpu",
    ) -> None:
        self._fd: Optional[int] = None
        if device != "cpu":
            raise ValueError("weightseal.safe_open reads into host memory: device must be 'cpu'")
        self._framework = _framework(framework)
        self._path = os.fspath(filename)
        self._opened = _open(self._path, policy, signature)
        raw: Optional[bytes] = None
        if self._opened.signed() is not None:
            self._rel = _call(self._opened.file_of, self._path)
            raw, finding = _call(self._opened.header, self._rel)
            _warn(finding, stacklevel=2)
        else:
            self._rel = os.path.basename(self._path)
        if raw is None:
            # Warn mode without a trusted manifest (or with a header that does not
            # match): the library already reported why; load unchecked, as asked.
            self._fd = os.open(self._path, os.O_RDONLY)
            raw = _read_header_unchecked(self._fd, self._rel)
        self._tensors, self._metadata, self._data_start = _parse_header(raw, self._rel)

    def __enter__(self) -> "safe_open":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    def keys(self) -> List[str]:
        """Tensor names, sorted (as safetensors lists them)."""
        return sorted(self._tensors)

    def metadata(self) -> Optional[Dict[str, str]]:
        """The header's ``__metadata__`` (signed bytes), or None."""
        return None if self._metadata is None else dict(self._metadata)

    def get_tensor(self, name: str) -> Any:
        """Reads tensor ``name`` into a new array, checking its bytes as they land."""
        try:
            info = self._tensors[name]
        except KeyError:
            raise KeyError(f"tensor {name!r} is not in {self._rel}") from None
        import numpy as np

        dtype_name = info["dtype"]
        shape = tuple(int(d) for d in info["shape"])
        begin, end = (int(x) for x in info["data_offsets"])
        torch_dtype = None
        if dtype_name in _NP_DTYPES:
            arr = np.empty(shape, dtype=np.dtype(_NP_DTYPES[dtype_name]))
            flat = arr.reshape(-1).view(np.uint8)
        elif self._framework == "pt" and dtype_name in _TORCH_ONLY:
            import torch

            torch_dtype = getattr(torch, _TORCH_ONLY[dtype_name])
            flat = arr = np.empty(end - begin, dtype=np.uint8)
        else:
            raise TypeError(f"tensor {name!r} has dtype {dtype_name}, which framework={self._framework!r} cannot hold")
        if flat.nbytes != end - begin:
            raise TamperedError(
                f"{self._rel}: tensor {name!r} header says {end - begin} bytes, dtype and shape say {flat.nbytes}",
                {"file": self._rel, "tensor": name},
            )
        if self._fd is None:
            _warn(_call(self._opened.read_tensor_into, name, flat), stacklevel=2)
        else:
            got = os.preadv(self._fd, [flat], self._data_start + begin) if flat.nbytes else 0
            if got != flat.nbytes:
                raise TamperedError(f"{self._rel}: tensor {name!r} is truncated", {"file": self._rel, "tensor": name})
        if self._framework == "pt":
            import torch

            t = torch.from_numpy(arr)
            return t.view(torch_dtype).reshape(shape) if torch_dtype is not None else t
        return arr


def load_file(
    filename: PathLike,
    framework: str = "numpy",
    policy: Union[None, Policy, PathLike] = None,
    signature: Optional[PathLike] = None,
) -> Dict[str, Any]:
    """``safetensors.numpy.load_file`` (or ``safetensors.torch.load_file`` with
    ``framework="pt"``), every tensor checked as it is read."""
    with safe_open(filename, framework=framework, policy=policy, signature=signature) as f:
        return {k: f.get_tensor(k) for k in f.keys()}
