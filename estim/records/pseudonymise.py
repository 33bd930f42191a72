"""Pseudonymisation of person keys (docs/design.md §3: person keys are personal data).

At ingestion every personal column (``Schema.personal``, e.g. ``person_key``) is replaced by ``person_id``:
the first 16 hexadecimal characters of HMAC-SHA256(key, UTF-8 person key). The same key gives the same
``person_id`` for the same person in every table and every run, so capture histories can be linked; without
the key the ids cannot be traced back to the person keys. The raw keys never leave ingestion.

Where the key comes from, first found wins:

1. the ``key`` argument (of `pseudonym_key` or `estim.records.load_records`);
2. the environment variable ``ESTIM_PSEUDONYM_KEY`` (the key as text);
3. the environment variable ``ESTIM_PSEUDONYM_KEY_FILE`` (a file holding the key; surrounding whitespace
   is stripped);
4. the file ``~/.config/estim/pseudonym.key`` (likewise stripped);
5. `DEFAULT_KEY`, a **public** key written here in the source. It protects nothing: it is only fit for the
   shipped synthetic data, and using it emits a warning (once per process). For real records set one of the
   above to a long random secret, e.g. ``python -c "import secrets; print(secrets.token_hex(32))"``, and
   keep it: a different key gives different ids.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from estim.errors import EstimInputError
from estim.records.recordset import PERSON_ID

DEFAULT_KEY = b"estim-synthetic-data-public-key"
"""The public fallback key: fit only for the shipped synthetic data."""

KEY_ENV = "ESTIM_PSEUDONYM_KEY"
KEY_FILE_ENV = "ESTIM_PSEUDONYM_KEY_FILE"
ID_LENGTH = 16
"""Hex characters kept of the HMAC: 64 bits, so collisions are negligible below billions of people."""

_warned_default = False
_BATCH = 1 << 16


def key_file_path() -> Path:
    """The per-user key file, ``~/.config/estim/pseudonym.key``."""
    return Path.home() / ".config" / "estim" / "pseudonym.key"


def pseudonym_key(explicit: bytes | str | None = None) -> bytes:
    """The pseudonymisation key, from the first source that has one (see the module docstring)."""
    global _warned_default
    if explicit is not None:
        return _non_empty(_as_bytes(explicit), "the key given")
    text = os.environ.get(KEY_ENV)
    if text is not None:
        return _non_empty(text.encode("utf-8"), f"${KEY_ENV}")
    file = os.environ.get(KEY_FILE_ENV)
    if file is not None:
        return _read_key_file(Path(file), f"${KEY_FILE_ENV} ({file})")
    user_file = key_file_path()
    if user_file.is_file():
        return _read_key_file(user_file, str(user_file))
    if not _warned_default:
        _warned_default = True
        warnings.warn(
            "estim is pseudonymising person keys with its public default key, which is only fit for "
            f"the shipped synthetic data; for real records set ${KEY_ENV}, ${KEY_FILE_ENV} or "
            f"{user_file}",
            UserWarning,
            stacklevel=2,
        )
    return DEFAULT_KEY


def _as_bytes(key: bytes | str) -> bytes:
    return key.encode("utf-8") if isinstance(key, str) else bytes(key)


def _non_empty(key: bytes, where: str) -> bytes:
    if not key:
        raise EstimInputError(f"the pseudonymisation key from {where} is empty")
    return key


def _read_key_file(path: Path, where: str) -> bytes:
    try:
        content = path.read_bytes()
    except OSError as e:
        raise EstimInputError(f"cannot read the pseudonymisation key file {where}: {e}") from e
    return _non_empty(content.strip(), where)


def _hmac_states(key: bytes) -> tuple[Any, Any]:
    """SHA-256 states after the HMAC inner and outer key blocks (RFC 2104), to copy for each message."""
    block = hashlib.sha256(key).digest() if len(key) > 64 else key
    block = block.ljust(64, b"\0")
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in block))
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in block))
    return inner, outer


def hash_keys(uniques: pa.Array, key: bytes) -> pa.Array:
    """``person_id`` of each distinct person key (HMAC-SHA256, hex, first 16 characters), as Arrow strings.

    Equal to ``hmac.new(key, k.encode(), "sha256").hexdigest()[:16]`` for each key, but about twice as fast:
    the key blocks are hashed once and the messages are sliced straight out of Arrow's UTF-8 buffer.
    """
    n = len(uniques)
    values = uniques.cast(pa.string()) if not pa.types.is_string(uniques.type) else uniques
    if values.null_count:
        values = values.fill_null("")
    _, offsets_buffer, data_buffer = values.buffers()
    offsets = np.frombuffer(offsets_buffer, np.int32, n + 1, values.offset * 4) if n else None
    data = data_buffer.to_pybytes() if data_buffer is not None else b""
    inner, outer = _hmac_states(key)
    new_inner, new_outer = inner.copy, outer.copy

    def digest(a: int, b: int) -> bytes:
        h = new_inner()
        h.update(data[a:b])
        o = new_outer()
        o.update(h.digest())
        return o.digest()

    kept = np.empty((n, ID_LENGTH // 2), np.uint8)
    for s in range(0, n, _BATCH):  # in batches: bounded lists of Python ints and bytes
        assert offsets is not None
        bounds = offsets[s : s + _BATCH + 1].tolist()
        block = b"".join(map(digest, bounds[:-1], bounds[1:]))
        kept[s : s + len(bounds) - 1] = np.frombuffer(block, np.uint8).reshape(-1, 32)[
            :, : ID_LENGTH // 2
        ]
    hex_text = kept.tobytes().hex().encode("ascii")
    fixed = np.arange(0, ID_LENGTH * (n + 1), ID_LENGTH, dtype=np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(fixed), pa.py_buffer(hex_text))


def pseudonymise_codes(codes: np.ndarray, uniques: pa.Array, key: bytes) -> pd.Series:
    """``person_id`` for a factorised key column: `codes` index `uniques` (-1 for a missing key)."""
    ids = hash_keys(uniques, key)
    missing = codes < 0
    if len(ids) == 0:
        taken = pa.nulls(len(codes), pa.string())
    elif missing.any():
        taken = ids.take(pa.array(np.where(missing, 0, codes), mask=missing))
    else:
        taken = ids.take(pa.array(codes))
    return pd.Series(pd.arrays.ArrowStringArray(pa.chunked_array([taken])), name=PERSON_ID)


def pseudonymise(keys: pd.Series, key: bytes) -> pd.Series:
    """Replace person keys by ``person_id`` = HMAC-SHA256(key, UTF-8 key) in hex, first 16 characters.

    Each distinct key is hashed once. Missing keys stay missing. The result has dtype ``string``, the
    index of `keys` and the name ``person_id``.
    """
    codes, uniques = pd.factorize(keys, use_na_sentinel=True)
    values = pa.array([str(u) for u in uniques], pa.string())  # distinct keys only
    out = pseudonymise_codes(np.asarray(codes), values, _as_bytes(key))
    out.index = keys.index
    return out
