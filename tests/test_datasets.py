"""Tests of g2lstm.datasets: data dir, registry, download/verify against a local HTTP server."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import io
import os
import socket
import tarfile
import threading
import zipfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from g2lstm import datasets
from g2lstm.datasets import (
    DatasetSpec,
    RemoteFile,
    data_dir,
    get_dataset_spec,
    resolve_dataset,
)
from g2lstm.errors import ChecksumError, ConfigError, DataError, LimitError

SHARED_DATA = Path(
    os.environ.get("G2LSTM_DATA") or Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
)

TEXTS = {
    "train": b" the cat sat\n on the mat\n",
    "valid": b" the dog\n",
    "test": b" a mat\n\n",
}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("G2LSTM_DATA", raising=False)


class _Server:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.hits: Counter[str] = Counter()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.hits[self.path] += 1
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404, "Not Found")
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def add(self, path: str, body: bytes) -> str:
        self.files[path] = body
        return self.base + path


@pytest.fixture
def server() -> Iterator[_Server]:
    srv = _Server()
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()
    srv.thread.join(timeout=5)


def make_tar(members: dict[str, bytes], symlinks: dict[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        for name, target in (symlinks or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tf.addfile(info)
    return buf.getvalue()


def make_zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def lm_spec(
    url: str,
    archive: str,
    prefix: str,
    *,
    archive_sha: str | None = None,
    pinned: bool = True,
    name: str = "toy",
) -> DatasetSpec:
    members = tuple((f"{prefix}toy.{s}.txt", f"{s}.txt") for s in TEXTS)
    sums = tuple((f"{s}.txt", sha(t)) for s, t in TEXTS.items()) if pinned else ()
    return DatasetSpec(name, "lm", (RemoteFile(url, archive_sha, members, archive),), sums)  # type: ignore[arg-type]


def tar_members() -> dict[str, bytes]:
    return {f"./toy/data/toy.{s}.txt": t for s, t in TEXTS.items()} | {"./toy/README": b"x"}


def leftovers(root: Path) -> list[str]:
    """Everything under ``root`` except download lock files."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.suffix != ".lock")


def test_data_dir_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert data_dir() == tmp_path / "xdg" / "g2lstm" / "data"
    monkeypatch.setenv("G2LSTM_DATA", str(tmp_path / "env"))
    assert data_dir() == tmp_path / "env"
    assert data_dir(tmp_path / "flag") == tmp_path / "flag"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.delenv("G2LSTM_DATA")
    assert data_dir() == Path.home() / ".cache" / "g2lstm" / "data"


def test_tar_download_then_no_second_download(server: _Server, tmp_path: Path) -> None:
    archive = make_tar(tar_members())
    url = server.add("/toy.tgz", archive)
    reg = {"toy": lm_spec(url, "tar", "toy/data/", archive_sha=sha(archive))}
    root = resolve_dataset("toy", data_dir=tmp_path / "d", progress=False, registry=reg)
    assert root == tmp_path / "d" / "toy"
    for split, text in TEXTS.items():
        assert (root / f"{split}.txt").read_bytes() == text
    assert not (root / "README").exists()
    assert server.hits["/toy.tgz"] == 1
    assert resolve_dataset("toy", tmp_path / "d", registry=reg, verify="full") == root
    assert server.hits["/toy.tgz"] == 1
    # Nothing but the dataset remains: no archive, no staging folder, no partial file.
    left = [p for p in leftovers(tmp_path / "d") if not p.endswith(".g2lstm-stamps.json")]
    assert left == ["toy", "toy/test.txt", "toy/train.txt", "toy/valid.txt"]


def test_zip_trusted_on_first_use_then_checked(server: _Server, tmp_path: Path) -> None:
    url = server.add("/wt.zip", make_zip({f"wt/toy.{s}.txt": t for s, t in TEXTS.items()}))
    reg = {"toy": lm_spec(url, "zip", "wt/", pinned=False)}
    root = resolve_dataset("toy", tmp_path, progress=False, registry=reg)
    recorded = datasets.read_checksums(root / "SHA256SUMS")
    assert recorded == {f"{s}.txt": sha(t) for s, t in TEXTS.items()}
    (root / "valid.txt").write_bytes(b" the cat\n")  # changed after the download
    with pytest.raises(ChecksumError, match=r"valid\.txt.*SHA256SUMS"):
        resolve_dataset("toy", tmp_path, registry=reg)


def test_checksum_and_stamp_files_are_shareable(server: _Server, tmp_path: Path) -> None:
    """SHA256SUMS and the stamp file get the umask's mode (0644 here), not mkstemp's 0600."""
    url = server.add("/wt2.zip", make_zip({f"wt/toy.{s}.txt": t for s, t in TEXTS.items()}))
    reg = {"toy": lm_spec(url, "zip", "wt/", pinned=False)}
    old = os.umask(0o022)
    try:
        root = resolve_dataset("toy", tmp_path, progress=False, registry=reg)
        for f in root.glob("*.txt"):  # files younger than 2 s are never stamped
            os.utime(f, (f.stat().st_mtime - 60,) * 2)
        resolve_dataset("toy", tmp_path, registry=reg)  # records stamps
    finally:
        os.umask(old)
    for name in ("SHA256SUMS", ".g2lstm-stamps.json", "train.txt"):
        assert (root / name).stat().st_mode & 0o777 == 0o644, name


def test_gz_and_plain_files_checked_after_decompression(server: _Server, tmp_path: Path) -> None:
    de, en = "ein Hund läuft\n".encode(), b"a dog runs\n"
    files = (
        RemoteFile(
            server.add("/raw/train.de.gz", gzip.compress(de)), None, (("", "raw/train.de"),), "gz"
        ),
        RemoteFile(server.add("/tok/train.en", en), sha(en), (("", "tok/train.en"),)),
    )
    pins = (("raw/train.de", sha(de)), ("tok/train.en", sha(en)))
    reg = {"m": DatasetSpec("m", "mt", files, pins)}
    root = resolve_dataset("m", tmp_path, progress=True, registry=reg, kind="mt")
    assert (root / "raw" / "train.de").read_bytes() == de
    assert (root / "tok" / "train.en").read_bytes() == en


def test_archive_checksum_mismatch_keeps_nothing(server: _Server, tmp_path: Path) -> None:
    archive = make_tar(tar_members())
    url = server.add("/toy.tgz", archive)
    reg = {"toy": lm_spec(url, "tar", "toy/data/", archive_sha="0" * 64)}
    with pytest.raises(ChecksumError) as err:
        resolve_dataset("toy", tmp_path / "d", progress=False, registry=reg)
    assert f"{url}: expected sha256 {'0' * 64}, got {sha(archive)}" in str(err.value)
    assert leftovers(tmp_path / "d") == []


def test_extracted_file_checksum_mismatch_keeps_nothing(server: _Server, tmp_path: Path) -> None:
    url = server.add("/toy.tgz", make_tar(tar_members()))
    spec = lm_spec(url, "tar", "toy/data/")
    bad = DatasetSpec("toy", "lm", spec.files, (("train.txt", "1" * 64),))
    with pytest.raises(ChecksumError, match=r"train\.txt.*expected sha256 1{64}, got"):
        resolve_dataset("toy", tmp_path / "d", progress=False, registry={"toy": bad})
    assert leftovers(tmp_path / "d") == []


def test_http_404_is_a_data_error_with_hint(server: _Server, tmp_path: Path) -> None:
    url = server.base + "/missing.tgz"
    reg = {"toy": lm_spec(url, "tar", "toy/data/")}
    with pytest.raises(DataError, match="404") as err:
        resolve_dataset("toy", tmp_path / "d", progress=False, registry=reg)
    assert url in str(err.value)
    assert "manually" in str(err.value)
    assert leftovers(tmp_path / "d") == []


def test_connection_refused_is_a_data_error(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/toy.tgz"
    reg = {"toy": lm_spec(url, "tar", "toy/data/")}
    with pytest.raises(DataError, match="failed") as err:
        resolve_dataset("toy", tmp_path / "d", progress=False, registry=reg, timeout=5)
    assert url in str(err.value)


def test_download_false_says_how_to_get_it(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"download=False.*simple-examples\.tgz"):
        resolve_dataset("ptb", tmp_path, download=False)


def test_unknown_name_lists_known_names(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"ptb.*wikitext-103") as err:
        resolve_dataset("penn", tmp_path)
    assert "multi30k" in str(err.value)
    with pytest.raises(DataError, match="does not exist"):
        resolve_dataset(str(tmp_path / "nowhere"), tmp_path)


def test_existing_folder_is_returned_after_layout_check(tmp_path: Path) -> None:
    folder = tmp_path / "corpus"
    folder.mkdir()
    for split in ("train", "valid"):
        (folder / f"{split}.txt").write_text("a b\n")
    assert resolve_dataset(folder) == folder
    with pytest.raises(DataError, match=r"missing test\.txt.*expected layout"):
        resolve_dataset(folder, kind="lm")


def test_unsafe_member_and_destination_names_are_rejected() -> None:
    with pytest.raises(ConfigError, match=r"\.\."):
        RemoteFile("http://x/a.tgz", None, (("../etc/passwd", "train.txt"),), "tar")
    with pytest.raises(ConfigError, match="relative"):
        RemoteFile("http://x/a.tgz", None, (("a.txt", "/tmp/train.txt"),), "tar")
    with pytest.raises(ConfigError, match="sha256"):
        RemoteFile("http://x/a.txt", "abc", (("", "a.txt"),))
    with pytest.raises(ConfigError, match="must be ''"):
        RemoteFile("http://x/a.gz", None, (("inner", "a.txt"),), "gz")
    with pytest.raises(ConfigError, match="name an archive member"):
        RemoteFile("http://x/a.zip", None, (("", "a.txt"),), "zip")
    with pytest.raises(ConfigError, match="kind"):
        DatasetSpec("x", "vision", layout=("a",))  # type: ignore[arg-type]


def test_archive_traversal_members_are_never_written(server: _Server, tmp_path: Path) -> None:
    members = tar_members() | {"../evil.txt": b"x", "/abs-evil.txt": b"x"}
    url = server.add("/toy.tgz", make_tar(members))
    reg = {"toy": lm_spec(url, "tar", "toy/data/")}
    root = resolve_dataset("toy", tmp_path / "d" / "e", progress=False, registry=reg)
    assert (root / "train.txt").is_file()
    assert not list(tmp_path.rglob("*evil*"))


def test_symlink_member_is_refused(server: _Server, tmp_path: Path) -> None:
    members = {k: v for k, v in tar_members().items() if "train" not in k}
    archive = make_tar(members, symlinks={"./toy/data/toy.train.txt": "/etc/passwd"})
    reg = {"toy": lm_spec(server.add("/toy.tgz", archive), "tar", "toy/data/")}
    with pytest.raises(DataError, match="not a file"):
        resolve_dataset("toy", tmp_path / "d", progress=False, registry=reg)
    assert leftovers(tmp_path / "d") == []


def test_missing_member_is_reported(server: _Server, tmp_path: Path) -> None:
    members = {k: v for k, v in tar_members().items() if "test" not in k}
    reg = {"toy": lm_spec(server.add("/toy.tgz", make_tar(members)), "tar", "toy/data/")}
    with pytest.raises(DataError, match=r"no member\(s\) toy/data/toy\.test\.txt"):
        resolve_dataset("toy", tmp_path / "d", progress=False, registry=reg)


def _place_old_copy(root: Path) -> None:
    root.mkdir(parents=True)
    for split, text in TEXTS.items():
        (root / f"{split}.txt").write_bytes(text)
        os.utime(root / f"{split}.txt", ns=(10**18, 10**18))  # older than the racy window


def test_cached_verification_hashes_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reg = {"toy": lm_spec("http://127.0.0.1:9/none.tgz", "tar", "toy/data/")}
    _place_old_copy(tmp_path / "toy")
    calls: list[Path] = []
    real = datasets.sha256_file
    # file_digests looks sha256_file up in g2lstm.datasets.verify.
    monkeypatch.setattr(datasets.verify, "sha256_file", lambda p: calls.append(p) or real(p))
    resolve_dataset("toy", tmp_path, download=False, registry=reg)
    assert len(calls) == 3
    resolve_dataset("toy", tmp_path, download=False, registry=reg)
    assert len(calls) == 3  # stamps reused
    resolve_dataset("toy", tmp_path, download=False, registry=reg, verify="full")
    assert len(calls) == 6
    resolve_dataset("toy", tmp_path, download=False, registry=reg, verify="none")
    assert len(calls) == 6
    (tmp_path / "toy" / "test.txt").write_bytes(b" a hat\n\n")
    with pytest.raises(ChecksumError, match=r"test\.txt.*pinned"):
        resolve_dataset("toy", tmp_path, download=False, registry=reg)


def test_read_only_folder_keeps_stamps_in_user_cache(tmp_path: Path) -> None:
    reg = {"toy": lm_spec("http://127.0.0.1:9/none.tgz", "tar", "toy/data/")}
    root = tmp_path / "ro" / "toy"
    _place_old_copy(root)
    root.chmod(0o555)
    try:
        assert resolve_dataset("toy", tmp_path / "ro", download=False, registry=reg) == root
        assert sorted(p.name for p in root.iterdir()) == ["test.txt", "train.txt", "valid.txt"]
        assert len(list((tmp_path / "xdg" / "g2lstm" / "stamps").glob("*.json"))) == 1
    finally:
        root.chmod(0o755)


def test_builtin_registry() -> None:
    ptb = get_dataset_spec("ptb")
    assert ptb.kind == "lm"
    assert ptb.layout == ("train.txt", "valid.txt", "test.txt")
    assert ptb.files[0].url == "http://www.fit.vutbr.cz/~imikolov/rnnlm/simple-examples.tgz"
    assert ptb.files[0].members[0] == ("simple-examples/data/ptb.train.txt", "train.txt")
    assert ptb.pinned("train.txt") == (
        "fcea919f6cf83f35d4d00c6cbf08040d13d4155226340912e2fef9c9c4102cbf"
    )
    wt = get_dataset_spec("wikitext-103")
    assert wt.files[0].members[2] == ("wikitext-103/wiki.test.tokens", "test.txt")
    assert wt.pinned("train.txt") is None
    m30k = get_dataset_spec("multi30k")
    assert m30k.kind == "mt"
    assert len(m30k.layout) == 12
    assert len(m30k.sha256) == 12
    assert {f.archive for f in m30k.files} == {"gz", "plain"}
    with pytest.raises(ConfigError, match="already registered"):
        datasets.register_dataset(ptb)


def test_iwslt14_is_documented_but_not_downloadable(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"cannot be downloaded automatically.*iwslt14/"):
        resolve_dataset("iwslt14", tmp_path)
    with pytest.raises(ConfigError, match="mt dataset"):
        resolve_dataset("iwslt14", tmp_path, kind="lm")


@pytest.mark.data
def test_shared_data_resolves_without_download() -> None:
    if not (SHARED_DATA / "ptb" / "train.txt").is_file():
        pytest.skip(f"real data not found under {SHARED_DATA}")
    ptb = resolve_dataset("ptb", data_dir=SHARED_DATA, download=False, verify="full")
    assert ptb == SHARED_DATA / "ptb"
    m30k = resolve_dataset("multi30k", data_dir=SHARED_DATA, download=False, verify="full")
    assert (m30k / "tok" / "test2016.en").is_file()


def _bomb_spec(url: str, archive: str, max_bytes: int) -> DatasetSpec:
    members = tuple((f"toy/toy.{s}.txt", f"{s}.txt") for s in TEXTS)
    return DatasetSpec(
        "bomb",
        "lm",
        (RemoteFile(url, None, members, archive),),  # type: ignore[arg-type]
        max_bytes=max_bytes,
    )


@pytest.mark.parametrize("archive", ["zip", "tar"])
def test_archive_that_expands_past_the_cap_is_refused(
    archive: str, server: _Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 17 case 3: a small archive of a large file stops at the dataset's cap, counted
    on the bytes really decompressed; the environment variable raises the cap."""

    big = {f"toy/toy.{s}.txt": (b"the cat sat\n" * 100_000) for s in TEXTS}  # 1.2 MB each
    if archive == "zip":
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for name, data in big.items():
                zf.writestr(name, data)
        body = buf.getvalue()
    else:
        body = make_tar(big)
    assert len(body) < 100_000  # compresses ~50x: a small bomb
    url = server.add(f"/bomb.{archive}", body)
    reg = {"bomb": _bomb_spec(url, archive, max_bytes=2 << 20)}
    with pytest.raises(
        LimitError,
        match=r"unpacking bomb exceeds the cap of 2,097,152 bytes.*"
        r"G2LSTM_MAX_DOWNLOAD_BYTES",
    ):
        resolve_dataset("bomb", tmp_path / "d", progress=False, registry=reg)
    assert leftovers(tmp_path / "d") == []  # nothing kept: no staging folder, no partial file
    monkeypatch.setenv("G2LSTM_MAX_DOWNLOAD_BYTES", str(8 << 20))
    root = resolve_dataset("bomb", tmp_path / "d", progress=False, registry=reg)
    assert (root / "train.txt").stat().st_size == 1_200_000


def test_download_longer_than_the_cap_is_refused(server: _Server, tmp_path: Path) -> None:

    url = server.add("/huge.zip", b"x" * 5000)
    reg = {"bomb": _bomb_spec(url, "zip", max_bytes=4096)}
    with pytest.raises(LimitError, match=r"download of .*huge.zip \(5,000 bytes\) exceeds"):
        resolve_dataset("bomb", tmp_path / "d", progress=False, registry=reg)
    assert leftovers(tmp_path / "d") == []


def test_builtin_datasets_have_tight_caps() -> None:
    caps = {name: get_dataset_spec(name).max_bytes for name in ("ptb", "wikitext-2", "multi30k")}
    assert caps == {"ptb": 64 << 20, "wikitext-2": 64 << 20, "multi30k": 64 << 20}
