"""Compact storage of the JSON documents the service keeps (assessment requests and responses).

A document is stored as its orjson bytes compressed with Zstandard and a dictionary trained on assessment
requests and responses (`service/dictionaries/*.zdict`). Most of a response is the same text in every
assessment (factor titles, evidence quotes, mitigations); with the dictionary a frame refers to it
instead of repeating it, and an 8.5 KB response takes a few hundred bytes. A frame names the dictionary
it was made with, so dictionaries are only ever added: a new one (better suited to later rules) becomes
the one new rows use, and rows written with an older one stay readable.

Rows written before documents were compressed hold JSON text (or, on PostgreSQL before the migration
converted the column, a JSON value); they are read as they are.
"""

from __future__ import annotations

import threading
from functools import cache
from importlib import resources
from typing import Any

import orjson
import zstandard
from sqlalchemy import LargeBinary
from sqlalchemy.types import TypeDecorator

# The dictionary new rows are compressed with; every shipped dictionary stays readable.
CURRENT_DICTIONARY = "assessments-3.zdict"
LEVEL = 3  # about 20 µs per response; higher levels gain little with a dictionary
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


@cache
def _dictionaries() -> dict[int, zstandard.ZstdCompressionDict]:
    """Every shipped dictionary, by the id its frames carry."""
    found = {}
    for entry in resources.files("service.dictionaries").iterdir():
        if entry.name.endswith(".zdict"):
            dictionary = zstandard.ZstdCompressionDict(entry.read_bytes())
            found[dictionary.dict_id()] = dictionary
    return found


@cache
def current_dictionary() -> zstandard.ZstdCompressionDict:
    """The dictionary new documents are compressed with (`CURRENT_DICTIONARY`)."""
    data = (resources.files("service.dictionaries") / CURRENT_DICTIONARY).read_bytes()
    return _dictionaries()[zstandard.ZstdCompressionDict(data).dict_id()]


# zstandard's compressor and decompressor objects are not safe to share between threads.
_local = threading.local()


def _compressor() -> zstandard.ZstdCompressor:
    compressor = getattr(_local, "compressor", None)
    if compressor is None:
        compressor = _local.compressor = zstandard.ZstdCompressor(level=LEVEL, dict_data=current_dictionary())
    return compressor


def _decompressor(dict_id: int) -> zstandard.ZstdDecompressor:
    cache_ = getattr(_local, "decompressors", None)
    if cache_ is None:
        cache_ = _local.decompressors = {}
    decompressor = cache_.get(dict_id)
    if decompressor is None:
        dictionary = _dictionaries().get(dict_id) if dict_id else None
        if dict_id and dictionary is None:
            raise ValueError(f"stored document compressed with unknown dictionary {dict_id}")
        decompressor = cache_[dict_id] = zstandard.ZstdDecompressor(dict_data=dictionary)
    return decompressor


def pack(document: Any) -> bytes:
    """A JSON-ready document as stored: orjson bytes, compressed with the current dictionary."""
    return _compressor().compress(orjson.dumps(document))


def pack_json(raw: bytes) -> bytes:
    """Already serialised JSON as stored (saves dumping a document that was dumped for the response)."""
    return _compressor().compress(raw)


def unpack(stored: bytes | str | dict[str, Any] | list[Any]) -> Any:
    """A stored document, whichever way it was stored."""
    if isinstance(stored, (dict, list)):
        return stored
    if isinstance(stored, str):
        return orjson.loads(stored)
    data = bytes(stored)
    if data[:4] == _ZSTD_MAGIC:
        dict_id = zstandard.get_frame_parameters(data).dict_id
        return orjson.loads(_decompressor(dict_id).decompress(data))
    return orjson.loads(data)


def train_dictionary(samples: list[bytes], size: int = 64 * 1024) -> bytes:
    """A dictionary trained on sample documents (orjson bytes), for a new `service/dictionaries` file."""
    return zstandard.train_dictionary(size, samples, level=LEVEL).as_bytes()


class CompactJSON(TypeDecorator[Any]):
    """A JSON document column stored compactly (see the module's docstring); reads every earlier form."""

    impl = LargeBinary
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> bytes | None:
        if value is None:
            return None
        if isinstance(value, bytes):  # already packed by the caller
            return value
        return pack(value)

    def process_result_value(self, value: Any, dialect: Any) -> Any:
        return None if value is None else unpack(value)
