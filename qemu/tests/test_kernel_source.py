"""Finding, fetching and unpacking the kernel source (qemu/kernel/source.py).

The download path is served from 127.0.0.1: a small tarball made of the
real source's Makefile and the files the kit's patches touch."""
import contextlib
import functools
import hashlib
import http.server
import os
import subprocess
import tarfile
import threading

import pytest

from kernel import source as ks


def test_version_comes_from_the_makefile():
    text = "VERSION = 6\nPATCHLEVEL = 1\nSUBLEVEL = 188\nEXTRAVERSION =\n"
    assert ks.makefile_version(text, "x") == "6.1.188"


def test_another_series_is_refused_with_what_to_do():
    text = "VERSION = 6\nPATCHLEVEL = 12\nSUBLEVEL = 3\n"
    with pytest.raises(ks.SourceError, match=r"Linux 6\.12\.3; the kit needs 6\.1\.y \(KERNEL_SRC="):
        ks.makefile_version(text, "x")


def test_a_url_without_its_checksum_is_refused(monkeypatch, tmp_path):
    monkeypatch.setattr(ks, "CACHE", str(tmp_path))
    monkeypatch.setattr(ks, "DEBIAN_TARBALL", str(tmp_path / "none.tar.xz"))
    monkeypatch.delenv("KERNEL_SRC", raising=False)
    monkeypatch.delenv("KERNEL_SHA256", raising=False)
    monkeypatch.setenv("KERNEL_URL", "http://127.0.0.1:1/linux-6.1.1.tar.xz")
    with pytest.raises(ks.SourceError, match="KERNEL_URL needs KERNEL_SHA256"):
        ks.paths("fast")


def test_the_default_without_debian_source_is_the_pinned_release(monkeypatch, tmp_path):
    monkeypatch.setattr(ks, "CACHE", str(tmp_path))
    monkeypatch.setattr(ks, "DEBIAN_TARBALL", str(tmp_path / "none.tar.xz"))
    for var in ("KERNEL_SRC", "KERNEL_URL", "KERNEL_SHA256"):
        monkeypatch.delenv(var, raising=False)
    assert ks.PIN_URL.startswith("https://") and len(ks.PIN_SHA256) == 64
    _src, out = ks.paths("strict")
    assert os.path.basename(out).startswith(f"{ks.PIN_VERSION}-{ks.PIN_SHA256[:8]}-strict-")


def test_a_tree_of_another_series_is_refused(monkeypatch, tmp_path):
    (tmp_path / "Makefile").write_text("VERSION = 5\nPATCHLEVEL = 10\nSUBLEVEL = 1\n")
    monkeypatch.setenv("KERNEL_SRC", str(tmp_path))
    with pytest.raises(ks.SourceError, match="Linux 5.10.1; the kit needs 6.1.y"):
        ks.paths("fast")


def _patched_files():
    files = set()
    for p in ks._patches():
        with open(p) as f:
            files |= {l[6:].split("\t")[0].strip() for l in f if l.startswith("+++ b/")}
    return sorted(files)


@pytest.fixture
def mini_tarball(tmp_path):
    """linux-6.1.77/ with the real Makefile and the unpatched files the
    kit's patches change, as a tarball, and its SHA-256."""
    real = ks.prepare()
    tree = tmp_path / "linux-6.1.77"
    for f in _patched_files() + ["Makefile"]:
        (tree / f).parent.mkdir(parents=True, exist_ok=True)
        (tree / f).write_bytes(open(os.path.join(real, f), "rb").read())
    text = (tree / "Makefile").read_text()
    (tree / "Makefile").write_text(text.replace("SUBLEVEL = ", "SUBLEVEL = 77\n#", 1))
    for p in reversed(ks._patches()):   # the cached tree is patched: undo them
        with open(p, "rb") as f:
            subprocess.run(["patch", "-s", "-p1", "-R", "-d", str(tree)], stdin=f, check=True)
    tarball = tmp_path / "serve" / "linux-6.1.77.tar.xz"
    tarball.parent.mkdir()
    with tarfile.open(tarball, "w:xz") as t:
        t.add(tree, arcname=tree.name)
    return tarball, hashlib.sha256(tarball.read_bytes()).hexdigest()


@contextlib.contextmanager
def serve(folder):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *a: None
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as httpd:
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        try:
            yield f"http://127.0.0.1:{httpd.server_address[1]}"
        finally:
            httpd.shutdown()


def _use(monkeypatch, cache, url, sha):
    monkeypatch.setattr(ks, "CACHE", str(cache))
    monkeypatch.setattr(ks, "DEBIAN_TARBALL", str(cache / "none.tar.xz"))
    monkeypatch.delenv("KERNEL_SRC", raising=False)
    monkeypatch.setenv("KERNEL_URL", url)
    monkeypatch.setenv("KERNEL_SHA256", sha)


def test_download_checks_unpacks_and_patches(mini_tarball, monkeypatch, tmp_path, capsys):
    tarball, sha = mini_tarball
    cache = tmp_path / "cache"
    with serve(tarball.parent) as base:
        _use(monkeypatch, cache, f"{base}/{tarball.name}", sha)
        with pytest.raises(ks.SourceError, match="not unpacked yet; run 'make setup'"):
            ks.paths("fast")
        src = ks.prepare()
    assert "downloading" in capsys.readouterr().err
    assert open(os.path.join(src, ks.ID_FILE)).read().strip() == f"6.1.77-{sha[:8]}"
    for p in ks._patches():     # every patch is in: reversing it would apply
        with open(p, "rb") as f:
            assert subprocess.run(["patch", "-s", "-p1", "-R", "--dry-run", "-d", src], stdin=f,
                                  capture_output=True).returncode == 0
    got_src, out = ks.paths("fast")
    assert got_src == src and os.path.basename(out).startswith(f"6.1.77-{sha[:8]}-fast-")
    assert ks.prepare() == src      # once: the server is gone now


def test_a_wrong_checksum_keeps_nothing(mini_tarball, monkeypatch, tmp_path):
    tarball, sha = mini_tarball
    cache = tmp_path / "cache"
    with serve(tarball.parent) as base:
        _use(monkeypatch, cache, f"{base}/{tarball.name}", "0" * 64)
        with pytest.raises(ks.SourceError, match="not the expected 0000"):
            ks.prepare()
    assert not os.listdir(cache / "download")


def test_offline_names_kernel_src(monkeypatch, tmp_path):
    with serve(tmp_path) as base:
        pass                        # the port is closed again: nothing listens
    _use(monkeypatch, tmp_path / "cache", f"{base}/linux-6.1.77.tar.xz", "0" * 64)
    with pytest.raises(ks.SourceError, match=r"cannot download .*KERNEL_SRC=") as e:
        ks.prepare()
    assert "\n" not in str(e.value)


def test_a_tree_is_copied_and_never_changed(mini_tarball, monkeypatch, tmp_path):
    tarball, _sha = mini_tarball
    with tarfile.open(tarball) as t:
        t.extractall(tmp_path / "mine")
    tree = tmp_path / "mine" / "linux-6.1.77"
    before = {p: p.read_bytes() for p in tree.rglob("*") if p.is_file()}
    monkeypatch.setattr(ks, "CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("KERNEL_SRC", str(tree))
    src = ks.prepare()
    assert src.startswith(str(tmp_path / "cache")) and os.path.isfile(os.path.join(src, ks.ID_FILE))
    assert before == {p: p.read_bytes() for p in tree.rglob("*") if p.is_file()}
    assert ks.paths("fast")[0] == src
