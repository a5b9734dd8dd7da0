"""The files of a record from a directory or an archive (.zip, .tar, .tar.gz/.bz2/.xz).

One reader for ``evote tally`` (the three bundle files) and ``evote verify``
(every file next to meeting.json: the signed record's extension files too, and the attached
documents in its ``attachments/`` folder as ``attachments/NAME``), so
both refuse the same things: a missing bundle file, an unreadable archive, an
archive member that would inflate beyond :data:`MAX_MEMBER_BYTES`.  In an
archive the files sit at the root or in one folder (the one holding
meeting.json).  Errors are :class:`~server.record.format.BundleError`.
"""
from __future__ import annotations

import tarfile
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePosixPath

from server.ballot.attachments import ATTACHMENTS_FOLDER
from server.record.format import BUNDLE_FILES, MEETING_FILE, BundleError

__all__ = ["MAX_MEMBER_BYTES", "decode_text", "read_files"]

# A bundle of a large community is tens of MB; refuse archive members that
# would inflate beyond this rather than exhaust memory.
MAX_MEMBER_BYTES = 512 * 1024 * 1024


def read_files(path: str | Path, *, every_file: bool = False) -> dict[str, bytes]:
    """``{file name: content}`` of the record at ``path``.

    Always meeting.json, register.csv and ballots.csv (a missing one is an
    error); with ``every_file``, also every other regular file beside them.
    Files of a directory are read as they are; archive members are checked
    against :data:`MAX_MEMBER_BYTES` before they are inflated.
    """
    path = Path(path)
    if path.is_dir():
        return _read_directory(path, every_file)
    if not path.exists():
        raise BundleError(str(path), 0, "没有这个文件或目录")
    try:
        if zipfile.is_zipfile(path):
            return _read_zip(path, every_file)
        if tarfile.is_tarfile(path):
            return _read_tar(path, every_file)
    except (OSError, zipfile.BadZipFile, tarfile.TarError, EOFError) as exc:
        raise BundleError(str(path), 0, f"无法读取压缩包：{exc}") from None
    raise BundleError(str(path), 0, "不是 bundle 目录，也不是 .zip 或 .tar.gz 压缩包")


def decode_text(name: str, data: bytes) -> str:
    """A file's text: UTF-8, a byte-order mark tolerated (Excel writes one)."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise BundleError(name, line, "不是 UTF-8 编码的文本") from None


def _read_file(path: Path, name: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise BundleError(name, 0, f"无法读取：{exc.strerror or exc}") from None


def _read_directory(path: Path, every_file: bool) -> dict[str, bytes]:
    sources: dict[str, bytes] = {}
    for name in BUNDLE_FILES:
        if not (path / name).exists():
            raise BundleError(name, 0, f"文件缺失：目录 {str(path)!r} 中没有 {name}")
        sources[name] = _read_file(path / name, name)
    if every_file:
        for child in sorted(path.iterdir()):
            if child.name not in sources and child.is_file():
                sources[child.name] = _read_file(child, child.name)
        attached = path / ATTACHMENTS_FOLDER
        if attached.is_dir():
            for child in sorted(attached.iterdir()):
                if child.is_file():
                    name = f"{ATTACHMENTS_FOLDER}/{child.name}"
                    sources[name] = _read_file(child, name)
    return sources


def _pick_members(path: Path, names: Iterable[str], every_file: bool) -> dict[str, str]:
    """Map each file of the record to its archive member: at the root or in one folder."""
    by_folder: dict[str, dict[str, str]] = {}
    for member in names:
        pure = PurePosixPath(member)
        if every_file or pure.name in BUNDLE_FILES:
            by_folder.setdefault(str(pure.parent), {})[pure.name] = member
    folders = [folder for folder, files in by_folder.items() if MEETING_FILE in files]
    if not folders:
        raise BundleError(MEETING_FILE, 0, f"文件缺失：压缩包 {str(path)!r} 中没有 {MEETING_FILE}")
    if len(folders) > 1:
        raise BundleError(MEETING_FILE, 0, f"压缩包 {str(path)!r} 中有多个 {MEETING_FILE}：{', '.join(sorted(folders))}")
    files = dict(by_folder[folders[0]])
    if every_file:   # the attached documents of a signed record, one folder down
        inner = str(PurePosixPath(folders[0]) / ATTACHMENTS_FOLDER)
        files.update({f"{ATTACHMENTS_FOLDER}/{name}": member for name, member in by_folder.get(inner, {}).items()})
    for name in BUNDLE_FILES:
        if name not in files:
            raise BundleError(name, 0, f"文件缺失：压缩包 {str(path)!r} 中 {MEETING_FILE} 旁边没有 {name}")
    return files


def _check_size(name: str, size: int) -> None:
    if size > MAX_MEMBER_BYTES:
        raise BundleError(name, 0, f"文件过大：解压后 {size} 字节，上限 {MAX_MEMBER_BYTES} 字节")


def _members_in_order(members: Mapping[str, str]) -> list[tuple[str, str]]:
    """The bundle files first, in their order (so their errors come first), then the others by name."""

    def order(item: tuple[str, str]) -> tuple[int, str]:
        name = item[0]
        return (BUNDLE_FILES.index(name) if name in BUNDLE_FILES else len(BUNDLE_FILES), name)

    return sorted(members.items(), key=order)


def _read_zip(path: Path, every_file: bool) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        infos = {info.filename: info for info in archive.infolist() if not info.is_dir()}
        sources: dict[str, bytes] = {}
        for name, member in _members_in_order(_pick_members(path, infos, every_file)):
            # file_size is the declared size; zipfile stops inflating there (and checks the CRC).
            _check_size(name, infos[member].file_size)
            sources[name] = archive.read(member)
        return sources


def _read_tar(path: Path, every_file: bool) -> dict[str, bytes]:
    with tarfile.open(path) as archive:  # transparent gzip/bz2/xz
        infos = {info.name: info for info in archive.getmembers() if info.isfile()}
        sources: dict[str, bytes] = {}
        for name, member in _members_in_order(_pick_members(path, infos, every_file)):
            _check_size(name, infos[member].size)
            handle = archive.extractfile(infos[member])
            if handle is None:  # not reached: regular files always have content
                raise BundleError(name, 0, "无法读取压缩包中的文件")
            sources[name] = handle.read()
        return sources
