"""How inputs and outputs become bytes in a store.

msgpack keeps bytes, ints and floats exact (JSON would turn bytes into
base64 strings) and is fast. Files travel as msgpack extension types, so a
file is never confused with a plain bytes input. Never pickle: payloads come
from the network.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgpack

FILE_INPUT_CODE = 1
FILE_OUTPUT_CODE = 2


class UnstorableError(TypeError):
    """A predictor returned something that cannot cross processes."""


@dataclass(frozen=True)
class FileInput:
    """An uploaded file (multipart part) on its way to the predictor."""

    name: str
    media_type: str
    data: bytes


@dataclass(frozen=True)
class FileOutput:
    """A file a predictor wrote, carried back to the API as bytes."""

    name: str
    media_type: str
    data: bytes


FILE_TYPES = {FILE_INPUT_CODE: FileInput, FILE_OUTPUT_CODE: FileOutput}
FILE_CODES = {kind: code for code, kind in FILE_TYPES.items()}


def _default(obj: Any) -> Any:
    code = FILE_CODES.get(type(obj))
    if code is not None:
        return msgpack.ExtType(code, pack([obj.name, obj.media_type, obj.data]))
    if hasattr(obj, "tolist"):  # numpy arrays and scalars, torch tensors
        return obj.tolist()
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    raise UnstorableError(f"cannot store a {type(obj).__name__}; return lists, dicts, numbers, strings or bytes")


def _ext_hook(code: int, data: bytes) -> Any:
    kind = FILE_TYPES.get(code)
    return msgpack.ExtType(code, data) if kind is None else kind(*unpack(data))


def pack(obj: Any) -> bytes:
    try:
        return msgpack.packb(obj, default=_default, use_bin_type=True)
    except (OverflowError, ValueError) as exc:
        raise UnstorableError(str(exc)) from exc


def unpack(data: bytes) -> Any:
    return msgpack.unpackb(data, raw=False, strict_map_key=False, ext_hook=_ext_hook)
