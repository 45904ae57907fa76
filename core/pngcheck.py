"""PNG integrity and text chunks, read straight from the chunk structure.

Pillow skips the checksum of the image data chunks (IDAT) and stops inflating once it has the
rows it needs, so a PNG damaged in its pixel data can decode to garbage without any error.
:func:`verify` walks every chunk, checks each CRC, inflates the whole image stream (discarding
the output, so memory stays flat) and requires a complete zlib stream and an IEND chunk.
:func:`read_text` reads one text chunk (tEXt, zTXt or iTXt) up to a cap, without Pillow's text
limits, which refuse a whole picture for one oversized metadata chunk.
"""

from __future__ import annotations

import itertools
import struct
import zlib
from collections.abc import Iterator
from typing import BinaryIO

SIGNATURE = b"\x89PNG\r\n\x1a\n"
_BLOCK = 1 << 20  # bytes read (and inflated) at a time
_MAX_LENGTH = 2**31 - 1  # the largest chunk length the PNG specification allows
# samples per pixel by colour type: grey, RGB, palette, grey + alpha, RGBA
_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


class PngDamage(Exception):
    """The PNG's structure or checksums are broken (truncated, bit errors, bad zlib stream)."""


class TextTooLarge(Exception):
    """A text chunk holds more than the caller's cap."""


def verify(fp: BinaryIO) -> None:
    """Raise PngDamage unless every chunk's CRC holds and the image data inflates completely.

    Time and memory are bounded by the file: data is read and inflated a block at a time, and
    inflating stops once it passes what the header's size can need (a zlib bomb is damage).
    """
    start = fp.tell()
    try:
        fp.seek(0)
        if fp.read(8) != SIGNATURE:
            raise PngDamage("no PNG signature")
        inflater, inflated, limit = zlib.decompressobj(), 0, None
        for ctype, blocks in _chunks(fp):
            crc = zlib.crc32(ctype)
            head = b""
            for block in blocks:
                crc = zlib.crc32(block, crc)
                if limit is None and ctype == b"IHDR":
                    head += block
                elif ctype == b"IDAT" and limit is not None:
                    inflated += _inflate(inflater, block, limit - inflated)
            if limit is None:
                limit = _raw_size_limit(head)
            if fp.read(4) != struct.pack(">I", crc & 0xFFFFFFFF):
                raise PngDamage(f"bad checksum in {ctype!r}")
            if ctype == b"IEND":
                break
        if not inflater.eof:
            raise PngDamage("the image data stream is incomplete")
    except zlib.error as e:
        raise PngDamage(f"the image data stream is broken ({e})") from None
    finally:
        fp.seek(start)


def read_text(fp: BinaryIO, keyword: str, cap: int) -> str | None:
    """The text of the first tEXt/zTXt/iTXt chunk named ``keyword`` before the image data.

    None when there is none (or it cannot be decoded); TextTooLarge when its text, decompressed,
    is longer than ``cap`` bytes. Reads only the header chunks, so it is cheap on any image.
    """
    start = fp.tell()
    key = keyword.encode("latin-1")
    try:
        fp.seek(0)
        if fp.read(8) != SIGNATURE:
            return None
        for ctype, blocks in _chunks(fp):
            if ctype in (b"IDAT", b"IEND"):
                return None
            if ctype not in (b"tEXt", b"zTXt", b"iTXt"):
                _drain(blocks)
            else:
                text = _text_chunk(ctype, blocks, key, cap)
                if text is not None:
                    return text
                _drain(blocks)
            fp.read(4)  # CRC: a damaged header is found when the pixels are loaded
    except PngDamage:
        return None
    finally:
        fp.seek(start)
    return None


def _chunks(fp: BinaryIO) -> Iterator[tuple[bytes, Iterator[bytes]]]:
    """(type, its data in blocks) for each chunk; the caller reads the CRC after the blocks."""
    while True:
        head = fp.read(8)
        if len(head) < 8:
            raise PngDamage("truncated (no IEND chunk)")
        length, ctype = struct.unpack(">I4s", head)
        if length > _MAX_LENGTH or not ctype.isalpha():
            raise PngDamage(f"broken chunk header {ctype!r}")
        yield ctype, _blocks(fp, length)


def _blocks(fp: BinaryIO, length: int) -> Iterator[bytes]:
    while length:
        block = fp.read(min(length, _BLOCK))
        if not block:
            raise PngDamage("truncated")
        length -= len(block)
        yield block


def _drain(blocks: Iterator[bytes]) -> None:
    for _ in blocks:
        pass


def _inflate(inflater: zlib._Decompress, data: bytes, room: int) -> int:
    """Inflate ``data`` and discard the output; its length. PngDamage past ``room`` bytes."""
    total = 0
    while data and not inflater.eof:
        total += len(inflater.decompress(data, _BLOCK))
        if total > room:
            raise PngDamage("the image data inflates to more than the image's size")
        data = inflater.unconsumed_tail
    return total


def _raw_size_limit(ihdr: bytes) -> int:
    """Twice the bytes the IHDR's image needs when filtered (covers Adam7 interlacing)."""
    if len(ihdr) != 13:
        raise PngDamage("broken IHDR chunk")
    width, height, depth, colour = struct.unpack(">IIBB", ihdr[:10])
    bits = _CHANNELS.get(colour, 4) * max(depth, 1)
    return 2 * height * ((width * bits + 7) // 8 + 1) + 1024


def _text_chunk(ctype: bytes, blocks: Iterator[bytes], key: bytes, cap: int) -> str | None:
    """The chunk's text when its keyword is ``key`` (the caller drains what is left unread)."""
    name, sep, rest = next(blocks, b"").partition(b"\0")
    if not sep or name != key:
        return None
    compressed, encoding = ctype == b"zTXt", "latin-1"
    if ctype == b"zTXt":
        rest = rest[1:]  # the compression method byte (0: zlib)
    elif ctype == b"iTXt":
        parts = rest[2:].split(b"\0", 2)  # language tag, translated keyword, text
        if len(rest) < 2 or len(parts) < 3:
            return None
        compressed, encoding, rest = rest[0] == 1, "utf-8", parts[2]
    inflater = zlib.decompressobj() if compressed else None
    out = bytearray()
    try:
        for block in itertools.chain((rest,), blocks):
            if inflater is not None:
                block = inflater.decompress(block, cap + 1 - len(out))
                if inflater.unconsumed_tail:
                    block += b"\0"  # there is more: over the cap whatever the rest holds
            out += block
            if len(out) > cap:
                raise TextTooLarge(f"the {key.decode('latin-1')} text is over {cap} bytes")
    except zlib.error:
        return None
    return out.decode(encoding, "replace")
