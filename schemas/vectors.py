"""Embedding vectors on the wire: base64 of little-endian float32, with the model name and dimension beside.

Pure functions, no numpy: consumers in any language decode with one base64 call and a float32 view.
"""

from __future__ import annotations

import base64
import binascii
import sys
from array import array
from collections.abc import Iterable

from schemas.errors import PayloadError

__all__ = ["VECTOR_DIM", "decode_vector", "encode_vector"]

# The dimension every read model of this project indexes (all-MiniLM-L6-v2, as the original's semantic tier).
VECTOR_DIM = 384


def encode_vector(values: Iterable[float] | bytes) -> str:
    """base64 of the little-endian float32 bytes; ``bytes`` are taken as already little-endian float32."""
    if isinstance(values, bytes):
        raw = values
    else:
        arr = array("f", values)
        if sys.byteorder == "big":
            arr.byteswap()
        raw = arr.tobytes()
    return base64.b64encode(raw).decode("ascii")


def decode_vector(text: str, dim: int) -> bytes:
    """The little-endian float32 bytes of an encoded vector, checked to hold exactly ``dim`` values.

    Raises:
        PayloadError: not base64, or not ``dim`` float32 values.
    """
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise PayloadError("memory.embedded.vector", "not base64") from None
    if len(raw) != 4 * dim:
        raise PayloadError("memory.embedded.vector", f"holds {len(raw) // 4} values, dim says {dim}")
    return raw
