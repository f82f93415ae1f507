"""Audio for imports: open a folder or zip of clips safely, decode and check each clip, store it.

Everything here treats its input as hostile: archive member names may try to escape (zip slip),
archives may be zip bombs, header sizes may lie, a "clip.wav" may be a text file or cut short.
Each refusal is an AudioRejected whose message names the file or member and says why.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import re
import stat
import struct
import unicodedata
import zipfile
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import IO

import numpy as np
import soundfile
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from corpora.models import Utterance

logger = logging.getLogger(__name__)

# Extension -> (container format, extension it is stored under).
AUDIO_EXTENSIONS: dict[str, tuple[str, str]] = {
    "wav": ("WAV", "wav"),
    "wave": ("WAV", "wav"),
    "flac": ("FLAC", "flac"),
    "mp3": ("MP3", "mp3"),
    "ogg": ("OGG", "ogg"),
    "oga": ("OGG", "ogg"),
    "opus": ("OGG", "opus"),
}
# libsndfile's names for the containers that count as each format.
_SOUNDFILE_FORMATS = {
    "WAV": {"WAV", "WAVEX", "RF64", "W64"},
    "FLAC": {"FLAC"},
    "MP3": {"MP3"},
    "OGG": {"OGG"},
}
# MP3 decoders may drop the encoder's padding: allow two MPEG frames of slack before calling a clip truncated.
_MP3_FRAME_SLACK = 2 * 1152
_DECODE_BLOCK_FRAMES = 65536
_READ_CHUNK_BYTES = 1024 * 1024
# Members smaller than this cannot be a bomb on their own; their ratio is checked in the archive's total.
_RATIO_CHECK_MIN_BYTES = 1024 * 1024
_WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:")


@dataclass(frozen=True)
class AudioInfo:
    duration_s: float
    sample_rate: int
    channels: int
    format: str  # "WAV", "FLAC", "MP3", "OGG"


class AudioRejected(ValueError):
    """Why one audio file or archive was refused; str(exc) names the file/member and the reason."""

    def __init__(self, name: str, reason: str | None = None):
        self.name = name if reason is not None else ""
        self.reason = reason if reason is not None else name
        super().__init__(f"{name}: {reason}" if reason is not None else name)

    def __reduce__(self) -> tuple[type[AudioRejected], tuple[str, str | None]]:
        return (AudioRejected, (self.name, self.reason) if self.name else (self.reason, None))


def _normalise_name(name: str, *, where: str) -> str:
    """A relative POSIX path in NFC, or AudioRejected if it could point outside the bundle."""
    if not name or "\x00" in name or any(ord(ch) < 32 for ch in name):
        raise AudioRejected(where, f"the path {name!r} is empty or holds control characters")
    if "\\" in name:
        raise AudioRejected(where, f"the path {name!r} uses backslashes; use forward slashes (/)")
    if name.startswith("/") or _WINDOWS_DRIVE.match(name):
        raise AudioRejected(where, f"the path {name!r} is absolute; paths must be relative to the archive or folder")
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise AudioRejected(where, f"the path {name!r} climbs out with '..'")
    if not parts:
        raise AudioRejected(where, f"the path {name!r} names no file")
    return unicodedata.normalize("NFC", "/".join(parts))


def _read_capped(stream: IO[bytes], *, limit: int, where: str, what: str) -> bytes:
    """Read at most `limit` bytes, refusing anything longer whatever the headers said."""
    buffer = bytearray()
    while True:
        chunk = stream.read(min(_READ_CHUNK_BYTES, limit + 1 - len(buffer)))
        if not chunk:
            return bytes(buffer)
        buffer += chunk
        if len(buffer) > limit:
            raise AudioRejected(where, f"{what} is larger than {limit} bytes")


class AudioBundle(ABC):
    """A folder or a zip of audio files; use as a context manager."""

    description = "bundle"

    def __init__(self, label: str):
        self.label = label
        self._entries: dict[str, str] = {}  # normalised name -> name inside the folder or archive
        self._names: set[str] | None = None

    def names(self) -> set[str]:
        """Normalised relative POSIX paths of the files held (one shared set: cheap to call per row)."""
        if self._names is None:
            self._names = set(self._entries)
        return self._names

    def read(self, name: str) -> bytes:
        key = _normalise_name(name, where=name)
        if key not in self._entries:
            raise AudioRejected(name, f"no such file in the {self.description} {self.label}")
        return self._read_entry(key)

    @abstractmethod
    def _read_entry(self, key: str) -> bytes: ...

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> AudioBundle:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class FolderAudioBundle(AudioBundle):
    description = "folder"

    def __init__(self, root: Path):
        super().__init__(root.name or str(root))
        self.root = root.resolve()
        limit = settings.IMPORT_MAX_ZIP_MEMBERS
        for dirpath, _dirnames, filenames in os.walk(self.root, followlinks=False):
            for filename in filenames:
                full = Path(dirpath) / filename
                if full.is_symlink() or not full.is_file():
                    continue  # never follow links out of the folder
                relative = full.relative_to(self.root).as_posix()
                try:
                    key = _normalise_name(relative, where=relative)
                except AudioRejected:
                    continue  # a name no manifest could refer to safely
                if key in self._entries:
                    raise AudioRejected(relative, f"two files in folder {self.label} have the same name after Unicode normalisation")
                self._entries[key] = relative
                if len(self._entries) > limit:
                    raise AudioRejected(self.label, f"the folder holds more than {limit} files")

    def _read_entry(self, key: str) -> bytes:
        relative = self._entries[key]
        path = self.root / relative
        # A parent directory swapped for a link after the scan must not lead outside the folder.
        if not path.resolve().is_relative_to(self.root):
            raise AudioRejected(key, f"the path leads outside the folder {self.label}")
        limit = settings.IMPORT_MAX_AUDIO_BYTES
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError as exc:
            raise AudioRejected(key, f"cannot be opened: {exc.strerror or exc}") from None
        with os.fdopen(fd, "rb") as stream:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise AudioRejected(key, "is not a regular file")
            return _read_capped(stream, limit=limit, where=key, what="the file")

    def close(self) -> None:
        """Nothing to release: each read opens and closes its own file."""


class ZipAudioBundle(AudioBundle):
    description = "archive"

    def __init__(self, path: Path):
        super().__init__(path.name)
        try:
            self._zip = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
            raise AudioRejected(path.name, f"is not a readable zip archive ({exc})") from None
        self._infos: dict[str, zipfile.ZipInfo] = {}
        try:
            self._check_members()
        except BaseException:
            self._zip.close()
            raise

    def _check_members(self) -> None:
        infos = self._zip.infolist()
        max_members = settings.IMPORT_MAX_ZIP_MEMBERS
        max_total = settings.IMPORT_MAX_ZIP_BYTES
        max_ratio = settings.IMPORT_MAX_ZIP_RATIO
        if len(infos) > max_members:
            raise AudioRejected(self.label, f"the archive holds {len(infos)} members, more than the limit of {max_members}")
        total_size = 0
        total_compressed = 0
        for info in infos:
            where = f"{self.label}: member {info.filename!r}"
            if info.is_dir() and all(part in ("", ".") for part in info.filename.split("/")):
                continue  # "./" entries some archivers write for the top folder
            key = _normalise_name(info.filename, where=where)
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                raise AudioRejected(where, "is a symbolic link; archives may hold only plain files")
            if info.is_dir():
                continue
            if info.file_size < 0 or info.compress_size < 0:
                raise AudioRejected(where, "has a negative size in its header")
            if info.file_size > _RATIO_CHECK_MIN_BYTES and (
                info.compress_size == 0 or info.file_size / info.compress_size > max_ratio
            ):
                raise AudioRejected(
                    where,
                    f"expands {info.file_size / max(info.compress_size, 1):.0f} times, more than the limit of "
                    f"{max_ratio} (a zip bomb?)",
                )
            total_size += info.file_size
            total_compressed += info.compress_size
            if total_size > max_total:
                raise AudioRejected(self.label, f"the archive expands to more than {max_total} bytes, the limit")
            if key in self._infos:
                raise AudioRejected(where, "appears twice in the archive")
            self._infos[key] = info
            self._entries[key] = info.filename
        if total_size > _RATIO_CHECK_MIN_BYTES and total_size / max(total_compressed, 1) > max_ratio:
            raise AudioRejected(
                self.label,
                f"the archive expands {total_size / max(total_compressed, 1):.0f} times, more than the limit of "
                f"{max_ratio} (a zip bomb?)",
            )

    def _read_entry(self, key: str) -> bytes:
        info = self._infos[key]
        where = f"{self.label}: member {info.filename!r}"
        if info.flag_bits & 0x1:
            raise AudioRejected(where, "is encrypted")
        limit = settings.IMPORT_MAX_AUDIO_BYTES
        if info.file_size > limit:
            raise AudioRejected(where, f"is {info.file_size} bytes, more than the limit of {limit}")
        try:
            with self._zip.open(info) as stream:
                # Never trust the header: read no more than it declared, and refuse more.
                data = _read_capped(stream, limit=info.file_size, where=where, what="the member")
        except (zipfile.BadZipFile, NotImplementedError, RuntimeError, OSError, EOFError, ValueError) as exc:
            raise AudioRejected(where, f"cannot be extracted ({exc})") from None
        if len(data) != info.file_size:
            raise AudioRejected(where, f"holds {len(data)} bytes but its header says {info.file_size}")
        return data

    def close(self) -> None:
        self._zip.close()


def audio_bundle_open(path: Path) -> AudioBundle:
    """A folder or a .zip of audio files, checked for escaping paths, links and zip bombs."""
    path = Path(path)
    if path.is_dir():
        return FolderAudioBundle(path)
    if not path.is_file():
        raise AudioRejected(path.name or str(path), "does not exist")
    if not zipfile.is_zipfile(path):
        raise AudioRejected(path.name, "is neither a folder nor a zip archive")
    return ZipAudioBundle(path)


def _extension(name: str) -> tuple[str, str]:
    suffix = PurePosixPath(name).suffix.lower().lstrip(".")
    if suffix not in AUDIO_EXTENSIONS:
        accepted = ", ".join(f".{ext}" for ext in AUDIO_EXTENSIONS)
        raise AudioRejected(name, f"unsupported audio type {('.' + suffix) if suffix else '(no extension)'}; accepted: {accepted}")
    return AUDIO_EXTENSIONS[suffix]


def _sniff(data: bytes) -> str | None:
    head = data[:16]
    if (head[:4] == b"RIFF" and head[8:12] == b"WAVE") or head[:4] in (b"RF64", b"BW64", b"riff"):
        return "WAV"
    if head[:4] == b"fLaC":
        return "FLAC"
    if head[:4] == b"OggS":
        return "OGG"
    if head[:3] == b"ID3":
        # An ID3 tag may sit in front of FLAC as well as MP3: look past it.
        if len(data) >= 10:
            size = (data[6] << 21) | (data[7] << 14) | (data[8] << 7) | data[9]
            if data[10 + size : 14 + size] == b"fLaC":
                return "FLAC"
        return "MP3"
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        return "MP3"
    return None


def _looks_like_text(data: bytes) -> bool:
    sample = data[:512]
    try:
        text = sample.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(ch.isprintable() or ch in "\r\n\t" for ch in text)


def _wav_truncation(data: bytes) -> str | None:
    """libsndfile silently shortens a WAV whose data chunk is cut: compare with what the header promised."""
    if data[:4] != b"RIFF":
        return None  # RF64/W64 keep their sizes elsewhere; libsndfile checks those
    offset = 12
    while offset + 8 <= len(data):
        chunk_id = data[offset : offset + 4]
        (size,) = struct.unpack_from("<I", data, offset + 4)
        if chunk_id == b"data":
            available = len(data) - offset - 8
            # 0 and 0xFFFFFFFF mean "length unknown" (written by a stream that could not seek back).
            if size not in (0, 0xFFFFFFFF) and size > available:
                return f"is truncated: its header promises {size} bytes of audio but only {available} are present"
            return None
        offset += 8 + size + (size & 1)
    return "is truncated or malformed: it has no audio data chunk"


def _ogg_truncation(data: bytes) -> str | None:
    """Walk the Ogg pages: a stream cut short ends inside a page or without an end-of-stream page."""
    offset = 0
    last_flags = 0
    while offset < len(data):
        if data[offset : offset + 4] != b"OggS":
            return f"is malformed: no Ogg page starts at byte {offset}"
        if offset + 27 > len(data):
            return "is truncated: it ends inside an Ogg page header"
        last_flags = data[offset + 5]
        segments = data[offset + 26]
        if offset + 27 + segments > len(data):
            return "is truncated: it ends inside an Ogg page header"
        body = sum(data[offset + 27 : offset + 27 + segments])
        offset += 27 + segments + body
        if offset > len(data):
            return "is truncated: it ends inside an Ogg page"
    if not last_flags & 0x04:
        return "is truncated: its last Ogg page is not marked end-of-stream"
    return None


def audio_probe(data: bytes, *, name: str) -> AudioInfo:
    """Decode the whole clip and return what it holds, or AudioRejected saying why it cannot be used."""
    expected_format, _ext = _extension(name)
    if not data:
        raise AudioRejected(name, "is empty (0 bytes)")
    max_bytes = settings.IMPORT_MAX_AUDIO_BYTES
    if len(data) > max_bytes:
        raise AudioRejected(name, f"is {len(data)} bytes, more than the limit of {max_bytes}")
    sniffed = _sniff(data)
    if sniffed is None:
        what = "a text file" if _looks_like_text(data) else "not audio in any accepted format"
        raise AudioRejected(name, f"is named like {expected_format} audio but its content is {what}")
    if sniffed != expected_format:
        raise AudioRejected(name, f"is named like {expected_format} audio but its content is {sniffed}; fix the extension")
    structural_problem = (
        _wav_truncation(data) if sniffed == "WAV" else _ogg_truncation(data) if sniffed == "OGG" else None
    )
    if structural_problem:
        raise AudioRejected(name, structural_problem)

    max_seconds = settings.IMPORT_MAX_AUDIO_SECONDS
    promised = sample_rate = 0
    try:
        with soundfile.SoundFile(io.BytesIO(data)) as sound:
            if sound.format not in _SOUNDFILE_FORMATS[expected_format]:
                raise AudioRejected(name, f"is named like {expected_format} audio but decodes as {sound.format}")
            sample_rate = int(sound.samplerate)
            channels = int(sound.channels)
            promised = int(sound.frames)
            if sample_rate <= 0 or channels <= 0:
                raise AudioRejected(name, f"has an impossible header ({sample_rate} Hz, {channels} channels)")
            if promised / sample_rate > max_seconds:
                raise AudioRejected(
                    name, f"is {promised / sample_rate:.1f} s long, more than the limit of {max_seconds} s"
                )
            decoded = 0
            block = np.empty((_DECODE_BLOCK_FRAMES, channels), dtype=np.float32)
            while True:
                got = len(sound.read(_DECODE_BLOCK_FRAMES, dtype="float32", always_2d=True, out=block))
                if got == 0:
                    break
                decoded += got
                if decoded / sample_rate > max_seconds:
                    raise AudioRejected(name, f"is longer than the limit of {max_seconds} s")
    except AudioRejected:
        raise
    except (soundfile.LibsndfileError, soundfile.SoundFileError, RuntimeError, ValueError, TypeError) as exc:
        # LibsndfileError's str() names the in-memory buffer; its error_string is the useful part.
        detail = str(getattr(exc, "error_string", "") or exc).strip()
        if promised and sample_rate:
            raise AudioRejected(
                name,
                f"is truncated or corrupt: it does not decode to the end of the {promised / sample_rate:.2f} s "
                f"its header promises ({detail})",
            ) from None
        raise AudioRejected(name, f"cannot be decoded as {expected_format} audio ({detail})") from None

    slack = _MP3_FRAME_SLACK if expected_format == "MP3" else 0
    if decoded + slack < promised:
        raise AudioRejected(
            name,
            f"is truncated: its header promises {promised} frames ({promised / sample_rate:.2f} s) "
            f"but only {decoded} ({decoded / sample_rate:.2f} s) decode",
        )
    if decoded == 0:
        raise AudioRejected(name, "holds no audio (0 frames)")
    return AudioInfo(duration_s=decoded / sample_rate, sample_rate=sample_rate, channels=channels, format=expected_format)


def audio_storage_name(*, corpus_id: int, data: bytes, name: str) -> str:
    """Where a clip lives in storage: named by its content, so the same bytes always land in one place."""
    _format, ext = _extension(name)
    digest = hashlib.blake2b(data, digest_size=16).hexdigest()
    return f"audio/{int(corpus_id)}/{digest}.{ext}"


def audio_store(*, corpus_id: int, data: bytes, name: str) -> str:
    """Save a clip into the default storage (local or S3) and return its storage name; idempotent."""
    storage_name = audio_storage_name(corpus_id=corpus_id, data=data, name=name)
    if default_storage.exists(storage_name):
        return storage_name
    saved = default_storage.save(storage_name, ContentFile(data))
    if saved != storage_name:
        # Another process stored the same content between our check and our save: keep one copy.
        default_storage.delete(saved)
    return storage_name


def audio_delete(names: Iterable[str]) -> None:
    """Best-effort removal of stored clips after an import rolled back.

    Call it after the import's transaction has rolled back: a clip that a committed utterance still
    points to (the same content imported earlier into the same corpus) is kept.
    """
    for storage_name in {n for n in names if n}:
        if Utterance.objects.filter(audio=storage_name).exists():
            continue
        try:
            default_storage.delete(storage_name)
        except Exception:  # best effort: a leftover object is harmless, a crash here would hide the real error
            logger.warning("could not delete stored audio %s", storage_name, exc_info=True)
