"""Order-preserving encoding of item keys for RocksDB.

An item key is ``hash8 | escaped(encode_value(hash)) 00 01 | encode_value(range)`` where
``hash8`` is the big-endian :func:`partition_hash` of the partition key value.  All items with
one partition key share the prefix :func:`hash_prefix`, so they are contiguous and sorted by the
range key: a Query is one range scan.

``encode_value`` orders bytes the way DynamoDB orders values: S by UTF-8 bytes, B bytewise, N
numerically.  A number is encoded as a sign byte (``01`` negative, ``02`` zero, ``03``
positive) followed, for non-zero values, by one exponent byte (adjusted exponent + 130, which
fits -130..125 exactly in 0..255), digit pairs (``pair + 1`` -> 1..100) and a terminator
(``00``).  For negatives the exponent byte and digit bytes are complemented (``255 - e``,
``101 - pair``) and the terminator is ``FF``, so larger magnitudes sort first.  Number
encodings are self-delimiting; S and B encodings are raw bytes.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from dynamolog.attrs import normalize_number, number_digits

__all__ = [
    "decode_item_key",
    "decode_value",
    "encode_item_key",
    "encode_value",
    "hash_prefix",
    "partition_hash",
    "prefix_end",
]

_NEG, _ZERO, _POS = 1, 2, 3
_EXP_BIAS = 130


def _raw(av: dict[str, Any]) -> tuple[str, bytes]:
    """Type letter and the raw bytes that identify a key value (N by its normalized text)."""
    kind, v = next(iter(av.items()))
    if kind == "S":
        return kind, v.encode("utf-8")
    if kind == "B":
        return kind, base64.b64decode(v)
    if kind == "N":
        return kind, normalize_number(v).encode("ascii")
    raise ValueError(f"key attributes must be S, N or B, not {kind}")


def partition_hash(hash_av: dict[str, Any]) -> int:
    """Stable unsigned 64-bit hash of a partition key value: first 8 bytes of MD5(type + raw).

    N is hashed from its normalized string (so ``1.0`` and ``1`` hash alike),
    B from its decoded bytes, S from its UTF-8 bytes.
    """
    kind, raw = _raw(hash_av)
    return int.from_bytes(hashlib.md5(kind.encode("ascii") + raw).digest()[:8], "big")


def _encode_number(text: str) -> bytes:
    sign, digits, exp = number_digits(text)
    if digits == "0":
        return bytes((_ZERO,))
    adjusted = exp + len(digits) - 1
    if len(digits) % 2:
        digits += "0"
    pairs = [int(digits[i : i + 2]) for i in range(0, len(digits), 2)]
    e = adjusted + _EXP_BIAS
    if sign:
        return bytes((_NEG, 255 - e, *(101 - p for p in pairs), 0xFF))
    return bytes((_POS, e, *(p + 1 for p in pairs), 0x00))


def _decode_number(data: bytes) -> str:
    if data[0] == _ZERO:
        return "0"
    neg = data[0] == _NEG
    e = 255 - data[1] if neg else data[1]
    digits = "".join(f"{(101 - b) if neg else (b - 1):02d}" for b in data[2:-1]).rstrip("0")
    adjusted = e - _EXP_BIAS
    exp = adjusted - len(digits) + 1
    if exp >= 0:
        out = digits + "0" * exp
    elif len(digits) > -exp:
        out = digits[:exp] + "." + digits[exp:]
    else:
        out = "0." + "0" * (-exp - len(digits)) + digits
    return "-" + out if neg else out


def encode_value(av: dict[str, Any]) -> bytes:
    """Order-preserving bytes of an S, N or B value (byte order == DynamoDB order)."""
    kind, v = next(iter(av.items()))
    if kind == "N":
        return _encode_number(v)
    return _raw(av)[1]


def decode_value(data: bytes, type_letter: str) -> dict[str, Any]:
    """Inverse of :func:`encode_value` for a value of type ``type_letter`` (S, N or B)."""
    if type_letter == "S":
        return {"S": bytes(data).decode("utf-8")}
    if type_letter == "B":
        return {"B": base64.b64encode(data).decode("ascii")}
    if type_letter == "N":
        return {"N": _decode_number(bytes(data))}
    raise ValueError(f"key attributes must be S, N or B, not {type_letter}")


def hash_prefix(hash_av: dict[str, Any]) -> bytes:
    """The item-key prefix shared by all items with this partition key value.

    8-byte big-endian :func:`partition_hash`, then ``encode_value(hash_av)`` with ``00``
    escaped as ``00 FF``, terminated by ``00 01`` (so no prefix is a prefix of another).
    """
    enc = encode_value(hash_av).replace(b"\x00", b"\x00\xff")
    return partition_hash(hash_av).to_bytes(8, "big") + enc + b"\x00\x01"


def encode_item_key(hash_av: dict[str, Any], range_av: dict[str, Any] | None = None) -> bytes:
    """RocksDB / log key of an item: :func:`hash_prefix` then ``encode_value(range_av)``."""
    prefix = hash_prefix(hash_av)
    return prefix if range_av is None else prefix + encode_value(range_av)


def decode_item_key(
    key: bytes, hash_type: str, range_type: str | None
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Split an item key back into ``(hash_av, range_av | None)``."""
    i, n = 8, len(key)
    out = bytearray()
    while True:
        j = key.index(b"\x00", i)
        out += key[i:j]
        if j + 1 >= n:
            raise ValueError("unterminated partition key in item key")
        if key[j + 1] == 0x01:
            break
        out.append(0)
        i = j + 2
    hash_av = decode_value(bytes(out), hash_type)
    rest = key[j + 2 :]
    if range_type is None:
        if rest:
            raise ValueError("unexpected range key bytes in item key")
        return hash_av, None
    return hash_av, decode_value(rest, range_type)


def prefix_end(prefix: bytes) -> bytes | None:
    """The smallest byte string greater than every string starting with ``prefix`` (None: no
    such string, the prefix is all ``FF``)."""
    b = bytearray(prefix)
    while b:
        if b[-1] < 0xFF:
            b[-1] += 1
            return bytes(b)
        b.pop()
    return None
