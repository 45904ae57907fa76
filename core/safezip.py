"""Reading zip archives that come from outside: the rules every zip Easel opens is held to.

A model archive (core/model_manager.py) and an OpenRaster picture (core/document/ora.py) are
both zips a user was handed. Before any member is read, :func:`check_members` refuses an
archive with too many members, a member whose path leaves the archive (absolute, a drive,
``..``), a member that claims to expand more than ``max_ratio`` times its compressed size (a
zip bomb), or members that together expand past ``max_total`` bytes. :func:`read_member` then
reads one member with a bound, because the sizes an archive declares may be lies.

Errors are :class:`ZipRefused` with one sentence naming the archive; callers add what was not
done ("not imported", "not opened").
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass


class ZipRefused(ValueError):
    """An archive (or one of its members) breaks the limits; the text names it."""


@dataclass(frozen=True)
class ZipLimits:
    max_members: int
    max_total: int  # uncompressed bytes, all members together
    max_ratio: int = 100  # uncompressed / compressed size of a member
    what: str = "archive"  # how messages call such an archive ("a model archive")


def check_members(z: zipfile.ZipFile, name: str, limits: ZipLimits) -> list[str]:
    """The archive's member names, after refusing one that breaks ``limits``."""
    infos = z.infolist()
    if len(infos) > limits.max_members:
        raise ZipRefused(f"{name} holds {len(infos)} files, more than the "
                         f"{limits.max_members} {limits.what} may")
    for info in infos:
        parts = info.filename.replace("\\", "/").split("/")
        if info.filename.startswith(("/", "\\")) or ":" in parts[0] or ".." in parts:
            raise ZipRefused(f"{name} holds {info.filename!r}, a path outside the archive")
        if info.file_size > limits.max_ratio * max(info.compress_size, 1):
            raise ZipRefused(f"{name}: {info.filename} would expand more than "
                             f"{limits.max_ratio} times (a zip bomb?)")
    if sum(i.file_size for i in infos) > limits.max_total:
        raise ZipRefused(f"{name} would expand to more than {limits.max_total:,} bytes")
    return [i.filename for i in infos]


def read_member(z: zipfile.ZipFile, member: str, limit: int, name: str,
                limits: ZipLimits) -> bytes:
    """A member's bytes, read with a bound of ``limit`` bytes (and of the ratio rule)."""
    info = z.getinfo(member)
    limit = min(limit, limits.max_ratio * max(info.compress_size, 1))
    with z.open(info) as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise ZipRefused(f"{name}: {member} expands to more than {limit:,} bytes")
    return data
