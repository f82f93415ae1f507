"""Audio for imports: real speech in every accepted format, hostile archives, broken clips, storage."""

from __future__ import annotations

import os
import pickle
import stat
import zipfile
from pathlib import Path

import pytest
from django.core.files.storage import default_storage

from corpora.importing.audio import (
    AudioInfo,
    AudioRejected,
    audio_bundle_open,
    audio_delete,
    audio_probe,
    audio_store,
)
from tests.fixtures.speech import SpeechFactory, wav_header_duration


@pytest.fixture(scope="session")
def speech(tmp_path_factory: pytest.TempPathFactory) -> SpeechFactory:
    return SpeechFactory(tmp_path_factory.mktemp("speech"))


@pytest.fixture
def media_root(settings, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    settings.STORAGES = {**settings.STORAGES, "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"}}
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def make_zip(path: Path, members: dict[str, bytes], *, compression: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        for name, data in members.items():
            archive.writestr(zipfile.ZipInfo(name), data, compress_type=compression)
    return path


def rejected(exc_info: pytest.ExceptionInfo[AudioRejected]) -> str:
    return str(exc_info.value)


# --- every accepted format decodes to the right length -------------------------------------------------------


@pytest.mark.parametrize("language", ["en", "hi", "mr"])
def test_wav_speech_in_each_language_reports_its_header_duration(speech: SpeechFactory, language: str) -> None:
    wav = speech.wav(language)
    seconds, sample_rate, channels = wav_header_duration(wav)

    info = audio_probe(wav.read_bytes(), name=f"clips/{wav.name}")

    assert info == AudioInfo(duration_s=pytest.approx(seconds), sample_rate=sample_rate, channels=channels, format="WAV")
    assert seconds > 0.5  # espeak-ng really spoke the sentence


@pytest.mark.parametrize(
    ("fmt", "expected_format", "tolerance_s"),
    [("flac", "FLAC", 0.0), ("ogg", "OGG", 0.0), ("opus", "OGG", 0.03), ("mp3", "MP3", 0.06)],
)
def test_each_compressed_format_reports_duration_and_sample_rate(
    speech: SpeechFactory, fmt: str, expected_format: str, tolerance_s: float
) -> None:
    wav = speech.wav("hi")
    seconds, sample_rate, _ = wav_header_duration(wav)
    encoded = speech.encode(wav, fmt)

    info = audio_probe(encoded.read_bytes(), name=encoded.name)

    assert info.format == expected_format
    assert info.channels == 1
    assert info.sample_rate == (48000 if fmt == "opus" else sample_rate)
    assert info.duration_s == pytest.approx(seconds, abs=tolerance_s + 1e-9)


def test_stereo_clip_reports_two_channels(speech: SpeechFactory) -> None:
    data = speech.tone_bytes(seconds=1.5, sample_rate=44100, channels=2, fmt="FLAC")

    info = audio_probe(data, name="stereo.flac")

    assert (info.channels, info.sample_rate, info.duration_s) == (2, 44100, pytest.approx(1.5))


# --- broken or disguised clips are refused with the reason ---------------------------------------------------


def test_text_file_named_wav_is_refused(tmp_path: Path) -> None:
    with pytest.raises(AudioRejected) as exc:
        audio_probe(b"utterance_id,text\nu1,hello\n", name="audio/u1.wav")
    assert rejected(exc) == "audio/u1.wav: is named like WAV audio but its content is a text file"


def test_flac_named_wav_is_refused(speech: SpeechFactory) -> None:
    flac = speech.encode(speech.wav("en"), "flac")
    with pytest.raises(AudioRejected) as exc:
        audio_probe(flac.read_bytes(), name="u1.wav")
    assert "u1.wav" in rejected(exc) and "its content is FLAC" in rejected(exc)


def test_random_bytes_are_not_audio() -> None:
    with pytest.raises(AudioRejected) as exc:
        audio_probe(os.urandom(4096).replace(b"\xff", b"\x00"), name="noise.mp3")
    assert "noise.mp3" in rejected(exc)


def test_truncated_wav_is_refused_although_libsndfile_would_shorten_it(speech: SpeechFactory) -> None:
    data = speech.wav("en").read_bytes()
    with pytest.raises(AudioRejected) as exc:
        audio_probe(data[: len(data) // 2], name="half.wav")
    assert rejected(exc).startswith("half.wav: is truncated: its header promises")


@pytest.mark.parametrize("fmt", ["flac", "ogg", "opus", "mp3"])
def test_truncated_compressed_clip_is_refused(speech: SpeechFactory, fmt: str) -> None:
    encoded = speech.encode(speech.wav("mr"), fmt)
    data = encoded.read_bytes()
    with pytest.raises(AudioRejected) as exc:
        audio_probe(data[: len(data) // 2], name=encoded.name)
    message = rejected(exc)
    assert message.startswith(f"{encoded.name}: ")
    assert "truncated" in message or "cannot be decoded" in message


def test_empty_file_is_refused() -> None:
    with pytest.raises(AudioRejected) as exc:
        audio_probe(b"", name="empty.wav")
    assert rejected(exc) == "empty.wav: is empty (0 bytes)"


def test_wav_with_no_frames_is_refused(speech: SpeechFactory) -> None:
    with pytest.raises(AudioRejected) as exc:
        audio_probe(speech.tone_bytes(seconds=0), name="silent.wav")
    assert rejected(exc) == "silent.wav: holds no audio (0 frames)"


def test_clip_over_the_length_limit_is_refused(speech: SpeechFactory, settings) -> None:  # type: ignore[no-untyped-def]
    wav = speech.wav("en")
    seconds, _, _ = wav_header_duration(wav)
    settings.IMPORT_MAX_AUDIO_SECONDS = 1
    assert seconds > 1

    with pytest.raises(AudioRejected) as exc:
        audio_probe(wav.read_bytes(), name="long.wav")
    assert rejected(exc) == f"long.wav: is {seconds:.1f} s long, more than the limit of 1 s"


def test_clip_over_the_byte_limit_is_refused(speech: SpeechFactory, settings) -> None:  # type: ignore[no-untyped-def]
    settings.IMPORT_MAX_AUDIO_BYTES = 1000
    with pytest.raises(AudioRejected) as exc:
        audio_probe(speech.wav("en").read_bytes(), name="big.wav")
    assert "big.wav" in rejected(exc) and "more than the limit of 1000" in rejected(exc)


def test_unsupported_extension_is_refused(speech: SpeechFactory) -> None:
    with pytest.raises(AudioRejected) as exc:
        audio_probe(speech.wav("en").read_bytes(), name="clip.aiff")
    assert rejected(exc).startswith("clip.aiff: unsupported audio type .aiff")


def test_rejection_survives_pickling_for_the_job_queue() -> None:
    error = AudioRejected("a.wav", "is empty (0 bytes)")
    copy = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own object
    assert (str(copy), copy.name, copy.reason) == (str(error), "a.wav", "is empty (0 bytes)")


# --- bundles: folders and zips -------------------------------------------------------------------------------


def test_zip_bundle_lists_and_reads_members(speech: SpeechFactory, tmp_path: Path) -> None:
    en, hi = speech.wav("en").read_bytes(), speech.wav("hi").read_bytes()
    archive = make_zip(tmp_path / "clips.zip", {"./": b"", "audio/": b"", "audio/en.wav": en, "./audio//hi.wav": hi})

    with audio_bundle_open(archive) as bundle:
        assert bundle.names() == {"audio/en.wav", "audio/hi.wav"}
        assert bundle.read("audio/en.wav") == en
        assert bundle.read("./audio/hi.wav") == hi
        assert audio_probe(bundle.read("audio/hi.wav"), name="audio/hi.wav").format == "WAV"


def test_missing_member_is_named(speech: SpeechFactory, tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "clips.zip", {"a.wav": speech.wav("en").read_bytes()})
    with audio_bundle_open(archive) as bundle, pytest.raises(AudioRejected) as exc:
        bundle.read("b.wav")
    assert rejected(exc) == "b.wav: no such file in the archive clips.zip"


@pytest.mark.parametrize(
    ("member", "why"),
    [
        ("../../etc/cron.d/evil.wav", "climbs out with '..'"),
        ("audio/../../evil.wav", "climbs out with '..'"),
        ("/etc/evil.wav", "is absolute"),
        ("C:/Windows/evil.wav", "is absolute"),
        ("..\\..\\evil.wav", "uses backslashes"),
        ("../", "climbs out with '..'"),
    ],
)
def test_zip_slip_members_are_refused(tmp_path: Path, member: str, why: str) -> None:
    archive = make_zip(tmp_path / "slip.zip", {"ok.wav": b"RIFF", member: b"RIFF"})
    with pytest.raises(AudioRejected) as exc:
        audio_bundle_open(archive)
    assert rejected(exc).startswith(f"slip.zip: member {member!r}: the path {member!r}")
    assert why in rejected(exc)


def test_symlink_member_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "link.zip"
    link = zipfile.ZipInfo("audio/a.wav")
    link.create_system = 3
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr(link, "/etc/passwd")
    with pytest.raises(AudioRejected) as exc:
        audio_bundle_open(archive)
    assert rejected(exc) == "link.zip: member 'audio/a.wav': is a symbolic link; archives may hold only plain files"


def test_zip_bomb_is_refused_on_open(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "bomb.zip", {"bomb.wav": bytes(8 * 1024 * 1024)})
    assert archive.stat().st_size < 100_000  # really a bomb: 8 MB of zeros in a few KB

    with pytest.raises(AudioRejected) as exc:
        audio_bundle_open(archive)
    assert "bomb.zip: member 'bomb.wav': expands" in rejected(exc) and "zip bomb" in rejected(exc)


def test_many_small_compressible_members_are_refused_as_a_whole(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "shards.zip", {f"s{i}.wav": bytes(512 * 1024) for i in range(8)})
    with pytest.raises(AudioRejected) as exc:
        audio_bundle_open(archive)
    assert rejected(exc).startswith("shards.zip: the archive expands")


def test_archive_over_the_total_size_limit_is_refused(speech: SpeechFactory, tmp_path: Path, settings) -> None:  # type: ignore[no-untyped-def]
    clip = speech.wav("en").read_bytes()
    archive = make_zip(tmp_path / "big.zip", {"a.wav": clip, "b.wav": clip + b"\0"}, compression=zipfile.ZIP_STORED)
    settings.IMPORT_MAX_ZIP_BYTES = len(clip) + 10
    with pytest.raises(AudioRejected) as exc:
        audio_bundle_open(archive)
    assert rejected(exc) == f"big.zip: the archive expands to more than {len(clip) + 10} bytes, the limit"


def test_too_many_members_are_refused(tmp_path: Path, settings) -> None:  # type: ignore[no-untyped-def]
    settings.IMPORT_MAX_ZIP_MEMBERS = 2
    archive = make_zip(tmp_path / "many.zip", {f"{i}.wav": b"RIFF" for i in range(3)})
    with pytest.raises(AudioRejected) as exc:
        audio_bundle_open(archive)
    assert rejected(exc) == "many.zip: the archive holds 3 members, more than the limit of 2"


def test_member_whose_header_understates_its_size_is_refused(speech: SpeechFactory, tmp_path: Path) -> None:
    clip = speech.wav("en").read_bytes()
    archive = make_zip(tmp_path / "liar.zip", {"a.wav": clip}, compression=zipfile.ZIP_STORED)
    # Rewrite the uncompressed size in the local and central headers to claim 100 bytes.
    raw = bytearray(archive.read_bytes())
    real_size = len(clip).to_bytes(4, "little")
    for signature, size_offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        at = raw.find(signature)
        assert raw[at + size_offset : at + size_offset + 4] == real_size
        raw[at + size_offset : at + size_offset + 4] = (100).to_bytes(4, "little")
    archive.write_bytes(bytes(raw))

    with audio_bundle_open(archive) as bundle, pytest.raises(AudioRejected) as exc:
        bundle.read("a.wav")
    assert rejected(exc).startswith("liar.zip: member 'a.wav': ")


def test_oversized_member_is_refused_on_read(speech: SpeechFactory, tmp_path: Path, settings) -> None:  # type: ignore[no-untyped-def]
    clip = speech.wav("en").read_bytes()
    archive = make_zip(tmp_path / "clips.zip", {"a.wav": clip})
    settings.IMPORT_MAX_AUDIO_BYTES = 1000
    with audio_bundle_open(archive) as bundle, pytest.raises(AudioRejected) as exc:
        bundle.read("a.wav")
    assert rejected(exc) == f"clips.zip: member 'a.wav': is {len(clip)} bytes, more than the limit of 1000"


def test_file_that_is_neither_folder_nor_zip_is_refused(tmp_path: Path) -> None:
    not_zip = tmp_path / "clips.zip"
    not_zip.write_text("just text")
    with pytest.raises(AudioRejected) as exc:
        audio_bundle_open(not_zip)
    assert rejected(exc) == "clips.zip: is neither a folder nor a zip archive"


def test_folder_bundle_reads_nested_files_and_never_follows_links_out(speech: SpeechFactory, tmp_path: Path) -> None:
    root = tmp_path / "corpus"
    (root / "audio" / "hi").mkdir(parents=True)
    clip = speech.wav("hi").read_bytes()
    (root / "audio" / "hi" / "u1.wav").write_bytes(clip)
    secret = tmp_path / "secret.wav"
    secret.write_bytes(clip)
    (root / "audio" / "leak.wav").symlink_to(secret)
    (root / "outside").symlink_to(tmp_path, target_is_directory=True)

    with audio_bundle_open(root) as bundle:
        assert bundle.names() == {"audio/hi/u1.wav"}
        assert bundle.read("audio/hi/u1.wav") == clip
        for name, why in [
            ("audio/leak.wav", "no such file"),
            ("outside/secret.wav", "no such file"),
            ("../secret.wav", "climbs out with '..'"),
            (str(secret), "is absolute"),
        ]:
            with pytest.raises(AudioRejected) as exc:
                bundle.read(name)
            assert rejected(exc).startswith(f"{name}: ") and why in rejected(exc)


def test_folder_with_too_many_files_is_refused(tmp_path: Path, settings) -> None:  # type: ignore[no-untyped-def]
    settings.IMPORT_MAX_ZIP_MEMBERS = 1
    for name in ("a.wav", "b.wav"):
        (tmp_path / name).write_bytes(b"RIFF")
    with pytest.raises(AudioRejected) as exc:
        audio_bundle_open(tmp_path)
    assert rejected(exc) == f"{tmp_path.name}: the folder holds more than 1 files"


def test_folder_file_over_the_byte_limit_is_refused(speech: SpeechFactory, tmp_path: Path, settings) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "a.wav").write_bytes(speech.wav("en").read_bytes())
    settings.IMPORT_MAX_AUDIO_BYTES = 1000
    with audio_bundle_open(tmp_path) as bundle, pytest.raises(AudioRejected) as exc:
        bundle.read("a.wav")
    assert rejected(exc) == "a.wav: the file is larger than 1000 bytes"


# --- storage ---------------------------------------------------------------------------------------------------


def test_audio_store_is_content_addressed_and_idempotent(speech: SpeechFactory, media_root: Path) -> None:
    clip = speech.wav("mr").read_bytes()

    first = audio_store(corpus_id=7, data=clip, name="audio/u1.WAV")
    again = audio_store(corpus_id=7, data=clip, name="other/name.wav")
    other_corpus = audio_store(corpus_id=8, data=clip, name="u1.wav")

    assert first == again
    assert first.startswith("audio/7/") and first.endswith(".wav") and len(Path(first).stem) == 32
    assert other_corpus.startswith("audio/8/")
    assert sorted(p.name for p in (media_root / "audio" / "7").iterdir()) == [Path(first).name]
    with default_storage.open(first) as stored:
        assert stored.read() == clip
    assert audio_probe(clip, name=first) == audio_probe((media_root / first).read_bytes(), name=first)


def test_audio_store_keeps_the_format_extension(speech: SpeechFactory, media_root: Path) -> None:
    ogg = speech.encode(speech.wav("en"), "ogg").read_bytes()
    assert audio_store(corpus_id=1, data=ogg, name="x.oga").endswith(".ogg")
    with pytest.raises(AudioRejected):
        audio_store(corpus_id=1, data=ogg, name="x.exe")


@pytest.mark.django_db
def test_audio_delete_removes_only_clips_no_utterance_uses(speech: SpeechFactory, media_root: Path, lead) -> None:  # type: ignore[no-untyped-def]
    from corpora.models import Language, Utterance
    from corpora.services import corpus_create

    corpus = corpus_create(name="Speech", license="CC-BY-4.0", created_by=lead)
    language = Language.objects.create(code="mr", name="Marathi", script="Deva")
    kept = audio_store(corpus_id=corpus.pk, data=speech.wav("mr").read_bytes(), name="a.wav")
    Utterance.objects.create(corpus=corpus, language=language, audio=kept, content_hash="0" * 32)
    dropped = audio_store(corpus_id=corpus.pk, data=speech.wav("en").read_bytes(), name="b.wav")

    audio_delete([kept, dropped, "audio/1/never-stored.wav", ""])

    assert default_storage.exists(kept)
    assert not default_storage.exists(dropped)

