"""Type stubs of the native module (Rust, PyO3). Private: use the `weightseal` package."""

from typing import Any, Dict, List, Optional, Tuple

# (kind, message, info) — kind is one of "tampered", "untrusted", "revoked",
# "status-unknown", "usage"; info has "file", "tensor" and "hits".
Finding = Tuple[str, str, Dict[str, Any]]

POLICY_ENV: str

class Refusal(Exception):
    args: Finding  # type: ignore[assignment]

class Policy:
    @staticmethod
    def from_file(path: str) -> Policy: ...
    @staticmethod
    def from_env() -> Policy: ...
    @staticmethod
    def build(
        trusted_keys: List[str],
        threshold: int,
        revocations: Optional[str],
        log_keys: List[str],
        state: Optional[str],
        mode: str,
        max_staleness_secs: Optional[int] = None,
        unsigned_models: Optional[str] = None,
        allow_unsigned_files_unsafe: bool = False,
        unsafe_ignore_revocation_status: bool = False,
    ) -> Policy: ...
    @property
    def mode(self) -> str: ...
    def open(self, model: str, signature: Optional[str] = None) -> Model: ...

class Model:
    @property
    def mode(self) -> str: ...
    def warnings(self) -> List[Finding]: ...
    def revocation(self) -> Dict[str, Any]: ...
    def signed(self) -> Optional[Tuple[str, List[str]]]: ...
    def file_of(self, path: str) -> str: ...
    def header(self, rel: str) -> Tuple[Optional[bytes], Optional[Finding]]: ...
    def tensor_len(self, name: str) -> int: ...
    # `buf` must be a writable, C-contiguous uint8 buffer that nothing else holds.
    def read_tensor_into(self, name: str, buf: Any) -> Optional[Finding]: ...
    def verify(self, tensors: Optional[List[str]] = None) -> Tuple[Optional[Dict[str, Any]], List[Finding]]: ...
