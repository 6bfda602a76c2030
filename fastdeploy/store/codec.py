"""How inputs and outputs become bytes in a store.

msgpack keeps bytes, ints and floats exact (JSON would turn bytes into
base64 strings) and is several times faster than pickle-free alternatives.
Never pickle: payloads come from the network.
"""

from __future__ import annotations

from typing import Any

import msgpack


class UnstorableError(TypeError):
    """A predictor returned something that cannot cross processes."""


def _default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):  # numpy arrays and scalars, torch tensors
        return obj.tolist()
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    raise UnstorableError(f"cannot store a {type(obj).__name__}; return lists, dicts, numbers, strings or bytes")


def pack(obj: Any) -> bytes:
    try:
        return msgpack.packb(obj, default=_default, use_bin_type=True)
    except (OverflowError, ValueError) as exc:
        raise UnstorableError(str(exc)) from exc


def unpack(data: bytes) -> Any:
    return msgpack.unpackb(data, raw=False, strict_map_key=False)
