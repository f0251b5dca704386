"""Reading a model or spec file that may be gzip-compressed (VNN-COMP ships ``.onnx.gz`` and
``.vnnlib.gz``), with a cap on what is read *and* on what it inflates to.

A file is gzip when it starts with gzip's magic bytes (``1f 8b``), whatever its name: neither a
VNN-LIB text nor an ONNX protobuf can start with them. Inflation is streamed in chunks and stops
as soon as the output passes the cap, so a decompression bomb (a few kilobytes inflating to
gigabytes) costs at most ``cap`` bytes of memory and is refused with an :class:`InputError`
naming the file and the cap; so is a corrupt or truncated gzip stream. Concatenated gzip
members are read as one stream, as ``gunzip`` does.
"""

from __future__ import annotations

import zlib
from pathlib import Path

from robustprop.properties.errors import InputError
from robustprop.verify.formats.text import printable

__all__ = ["CHUNK_BYTES", "GZIP_MAGIC", "is_gzip", "read_capped"]

#: The first two bytes of every gzip stream.
GZIP_MAGIC = b"\x1f\x8b"
#: Compressed bytes fed to the inflater at a time.
CHUNK_BYTES = 1 << 20


def is_gzip(data: bytes) -> bool:
    """Whether ``data`` starts like a gzip stream."""
    return data[:2] == GZIP_MAGIC


def read_capped(path: str | Path, cap: int, what: str, cap_name: str) -> bytes:
    """The bytes of ``path`` (inflated if it is gzip), at most ``cap`` of them.

    ``what`` names the kind of file in messages (``"VNN-LIB file"``), ``cap_name`` the constant
    that sets the cap. A missing file, a read error, a file or inflated content over the cap,
    and a corrupt gzip stream are :class:`InputError` s naming the file.
    """
    p = Path(path)
    shown = printable(p)
    try:
        with p.open("rb") as stream:
            raw = stream.read(cap + 1)
    except OSError as err:
        raise InputError(f"cannot read {what} {shown}: {err.strerror or err}") from err
    if not is_gzip(raw):
        if len(raw) > cap:
            raise InputError(f"{shown}: {what} larger than the cap of {cap} bytes ({cap_name})")
        return raw
    if len(raw) > cap:  # compressed data beyond the cap can only inflate beyond it
        raise InputError(
            f"{shown}: compressed {what} larger than the cap of {cap} bytes ({cap_name})"
        )
    return _inflate(raw, cap, f"{shown}: gzip-compressed {what}", cap_name)


def _inflate(raw: bytes, cap: int, where: str, cap_name: str) -> bytes:
    """Every gzip member of ``raw`` inflated, refusing output beyond ``cap`` bytes."""
    out = bytearray()
    rest = raw
    while rest:
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        position = 0
        try:
            while position < len(rest) and not inflater.eof:
                chunk = rest[position : position + CHUNK_BYTES]
                position += len(chunk)
                out += inflater.decompress(chunk, cap + 1 - len(out))
                while inflater.unconsumed_tail and len(out) <= cap:
                    out += inflater.decompress(inflater.unconsumed_tail, cap + 1 - len(out))
                if len(out) > cap or inflater.unconsumed_tail:
                    raise InputError(
                        f"{where} inflates to more than the cap of {cap} bytes ({cap_name})"
                    )
        except zlib.error as err:
            raise InputError(f"{where}: not a valid gzip stream ({err})") from err
        if not inflater.eof:
            raise InputError(f"{where}: the gzip stream is truncated")
        rest = inflater.unused_data + rest[position:]
        if rest and not is_gzip(rest):
            if rest.strip(b"\x00"):
                raise InputError(f"{where}: unexpected bytes after the gzip stream")
            break
    return bytes(out)
