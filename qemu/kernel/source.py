"""The kernel source the kit builds from, found, fetched and unpacked once.

  python3 -m kernel.source prepare        find or fetch a 6.1.y source,
                                          unpack and patch it into the
                                          cache; print its folder
  python3 -m kernel.source paths FLAVOUR  print the source folder, the build
                                          folder of that kernel flavour and
                                          the file that marks it built
  python3 -m kernel.source cache          print the cache's folder

Where the source comes from, first match wins:
1. KERNEL_SRC: a 6.1.y tarball or an unpacked tree (copied, never changed);
2. Debian's linux-source-6.1 package, /usr/src/linux-source-6.1.tar.xz;
3. the pinned upstream 6.1.y tarball, downloaded once and checked against
   its SHA-256 (KERNEL_URL with KERNEL_SHA256 replace the pin).

The version is read from the source's own Makefile, and the source's
identity (the SHA-256 of its tarball) goes into every cache key, so two
6.1.y trees never share a build.
"""
import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
CACHE = os.environ.get("KDKIT_CACHE") or os.path.join(
    os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "kdkit")
DEBIAN_TARBALL = "/usr/src/linux-source-6.1.tar.xz"
# The newest 6.1.y longterm release when this was pinned; the hash is
# kernel.org's (sha256sums.asc).
PIN_VERSION = "6.1.188"
PIN_URL = f"https://cdn.kernel.org/pub/linux/kernel/v6.x/linux-{PIN_VERSION}.tar.xz"
PIN_SHA256 = "ed4d0acb1307c235230c89efc094e210e6290593f94a7e617f28b1001101a33a"
FLAVOURS = {"fast": ["kernel.config"], "strict": ["kernel.config", "strict.config"]}
ID_FILE = ".kdkit-id"
# In a build folder: the kernel in it is complete (kernel/build.sh, pack.py).
BUILT_FILE = ".kdkit-built"


class SourceError(Exception):
    """No usable source: the message says what to do next."""


def flavour(strict):
    """The kernel flavour a run uses: strict (KASAN, lockdep) or fast."""
    return "strict" if strict else "fast"


def built_marker(build):
    return os.path.join(build, BUILT_FILE)


def kernel_dir(flavour):
    """The build folder of a built kernel of this flavour."""
    path = paths(flavour)[1]
    if not os.path.isfile(built_marker(path)):
        raise SourceError(f"the {flavour} kit kernel is not built; run 'make setup'")
    return path


def _patches():
    d = os.path.join(HERE, "patches")
    return sorted(os.path.join(d, p) for p in os.listdir(d) if p.endswith(".patch"))


def _digest(paths, lines=lambda f: f.read()):
    h = hashlib.sha256()
    for p in paths:
        with open(p, "rb") as f:
            h.update(lines(f))
    return h.hexdigest()


def _option_lines(f):
    # Comments explain the options and do not change the kernel: only
    # option lines ("# CONFIG_X is not set" included) make the key.
    return b"".join(l for l in f if l.startswith(b"# CONFIG_") or
                    (l.strip() and not l.startswith(b"#")))


def config_key(flavour):
    frags = [os.path.join(HERE, f) for f in FLAVOURS[flavour]]
    h = hashlib.sha256(_digest(frags, _option_lines).encode())
    h.update(_digest(_patches()).encode())
    return h.hexdigest()[:12]


def makefile_version(text, where):
    """'6.1.N' from a kernel Makefile's text; refuses any other series."""
    v = {k: re.search(rf"^{k}\s*=\s*(\S*)", text, re.M) for k in ("VERSION", "PATCHLEVEL", "SUBLEVEL")}
    if not all(v.values()):
        raise SourceError(f"{where} is not a kernel source (its Makefile has no VERSION); "
                          "give a 6.1.y tarball or tree with KERNEL_SRC=")
    version = ".".join(m[1] for m in v.values())
    if not version.startswith("6.1."):
        raise SourceError(f"{where} is Linux {version}; the kit needs 6.1.y "
                          "(KERNEL_SRC=, or unset it for the default)")
    return version


def _source():
    """(kind, path, sha256 or None): where the source comes from."""
    given = os.environ.get("KERNEL_SRC")
    if given:
        path = os.path.abspath(os.path.expanduser(given))
        if os.path.isdir(path):
            return "tree", path, None
        if os.path.isfile(path):
            return "tarball", path, None
        raise SourceError(f"KERNEL_SRC={given} does not exist; give a 6.1.y tarball or "
                          "an unpacked tree")
    if os.path.isfile(DEBIAN_TARBALL):
        return "tarball", DEBIAN_TARBALL, None
    url = os.environ.get("KERNEL_URL") or PIN_URL
    sha = os.environ.get("KERNEL_SHA256") or (PIN_SHA256 if url == PIN_URL else None)
    if not sha:
        raise SourceError("KERNEL_URL needs KERNEL_SHA256 (the tarball's SHA-256) beside it")
    return "url", url, sha.lower()


# Identities of tarballs and trees seen before, by path, size and mtime,
# so that a run does not hash 140 MB to find its kernel.
def _ids_path():
    return os.path.join(CACHE, "src", "ids.json")


def _load_ids():
    try:
        with open(_ids_path()) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def _remember(path, ident):
    ids = _load_ids()
    st = os.stat(path)
    ids[path] = {"size": st.st_size, "mtime": st.st_mtime_ns, "id": ident}
    os.makedirs(os.path.dirname(_ids_path()), exist_ok=True)
    tmp = _ids_path() + f".{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(ids, f, indent=1)
    os.replace(tmp, _ids_path())


def _recall(path):
    st = os.stat(path)
    rec = _load_ids().get(path)
    if rec and rec["size"] == st.st_size and rec["mtime"] == st.st_mtime_ns:
        return rec["id"]
    return None


def _tree_id(path):
    """A tree the kit prepared (a pack) carries its id; another is known by
    its version and where it lives."""
    try:
        with open(os.path.join(path, ID_FILE)) as f:
            return f.read().strip()
    except OSError:
        pass
    try:
        with open(os.path.join(path, "Makefile"), errors="replace") as f:
            version = makefile_version(f.read(), f"KERNEL_SRC={path}")
    except OSError:
        raise SourceError(f"KERNEL_SRC={path} has no Makefile; give the top of a 6.1.y tree")
    return f"{version}-{hashlib.sha256(path.encode()).hexdigest()[:8]}"


def identity(kind, path, sha):
    """'<version>-<8 hex digits>', or None for a tarball not unpacked yet."""
    if kind == "url":
        dest = _download_path(path)
        if os.path.isfile(dest):
            return _recall(dest)
        return f"{PIN_VERSION}-{sha[:8]}" if path == PIN_URL else None
    if kind == "tree":
        return _tree_id(path)
    return _recall(path)


def paths(flavour):
    """(source folder, build folder) of a flavour, without side effects."""
    if flavour not in FLAVOURS:
        raise SourceError(f"unknown flavour '{flavour}'; use fast or strict")
    kind, path, sha = _source()
    ident = identity(kind, path, sha)
    if ident is None:
        raise SourceError("the kernel source is not unpacked yet; run 'make setup'")
    src = _src_dir(kind, path, ident)
    patch_key = _digest(_patches())[:8]
    return src, os.path.join(CACHE, "kernel", f"{ident}-{flavour}-{config_key(flavour)}-{patch_key}")


def _src_dir(kind, path, ident):
    if kind == "tree" and os.path.isfile(os.path.join(path, ID_FILE)):
        return path
    return os.path.join(CACHE, "src", f"{ident}-{_digest(_patches())[:8]}")


def _download_path(url):
    return os.path.join(CACHE, "download", os.path.basename(url))


def _say(msg):
    print(f"kernel-source: {msg}", file=sys.stderr, flush=True)


def download(url, sha):
    """Fetch url into the cache once, with progress; verify its SHA-256."""
    dest = _download_path(url)
    if os.path.isfile(dest):
        return dest
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    part = dest + ".part"
    h = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=30) as r, open(part, "wb") as out:
            total = int(r.headers.get("Content-Length") or 0)
            done, shown = 0, -10
            _say(f"downloading {url} ({total >> 20} MB)" if total else f"downloading {url}")
            while chunk := r.read(1 << 20):
                out.write(chunk)
                h.update(chunk)
                done += len(chunk)
                pct = done * 100 // total if total else -1
                if pct >= shown + 10:
                    shown = pct - pct % 10
                    _say(f"  {shown}% ({done >> 20} MB)")
    except (urllib.error.URLError, OSError, ValueError) as e:
        with contextlib.suppress(OSError):
            os.unlink(part)
        reason = getattr(e, "reason", e)
        raise SourceError(f"cannot download {url} ({reason}); offline, give a 6.1.y source "
                          "with KERNEL_SRC=/path/to/linux-6.1.y.tar.xz (or an unpacked tree)")
    if h.hexdigest() != sha:
        os.unlink(part)
        raise SourceError(f"{url} has SHA-256 {h.hexdigest()}, not the expected {sha}: "
                          "not used; retry, or give KERNEL_SRC=")
    os.replace(part, dest)
    return dest


def _file_sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _apply_patches(tree):
    """The kit's few kernel patches; one already in the source is skipped."""
    for p in _patches():
        def patch(*flags):
            with open(p, "rb") as f:
                return subprocess.run(["patch", "-s", "-p1", "-f", "-d", tree, *flags], stdin=f,
                                      capture_output=True).returncode == 0
        if patch("--dry-run", "--forward"):
            patch("--forward")
        elif patch("--dry-run", "--reverse"):
            _say(f"{os.path.basename(p)} is already in this source")
        else:
            raise SourceError(f"the kit's patch {os.path.basename(p)} does not apply to this "
                              "source; use a 6.1.y release, or report it")


def _unpack(tarball, tmp):
    _say(f"unpacking {tarball}")
    proc = subprocess.run(["tar", "-xf", tarball, "-C", tmp, "--no-same-owner"],
                          capture_output=True, text=True)
    top = os.listdir(tmp)
    if proc.returncode != 0 or len(top) != 1:
        raise SourceError(f"{tarball} is not a kernel tarball with one top folder "
                          f"({proc.stderr.strip()[-200:] or ', '.join(top[:3])})")
    return os.path.join(tmp, top[0])


def prepare():
    """Make the source folder ready (download, unpack, patch); return it."""
    kind, path, sha = _source()
    if kind == "url":
        path = download(path, sha)
        kind = "tarball"
    if kind == "tree" and os.path.isfile(os.path.join(path, ID_FILE)):
        return path
    ident = identity(kind, path, sha)
    if ident is not None and os.path.isfile(os.path.join(_src_dir(kind, path, ident), ID_FILE)):
        return _src_dir(kind, path, ident)
    os.makedirs(os.path.join(CACHE, "src"), exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".unpack.", dir=os.path.join(CACHE, "src"))
    try:
        if kind == "tarball":
            tree = _unpack(path, tmp)
        else:
            _say(f"copying {path}")
            tree = os.path.join(tmp, "linux")
            shutil.copytree(path, tree, symlinks=True, ignore=shutil.ignore_patterns(".git"))
            if os.path.exists(os.path.join(tree, ".config")):
                subprocess.run(["make", "-s", "-C", tree, "mrproper"], check=True)
        with open(os.path.join(tree, "Makefile"), errors="replace") as f:
            version = makefile_version(f.read(), path)
        if kind == "tarball":
            digest = sha or _file_sha256(path)
            ident = f"{version}-{digest[:8]}"
        _apply_patches(tree)
        with open(os.path.join(tree, ID_FILE), "w") as f:
            f.write(ident + "\n")
        src = _src_dir(kind, path, ident)
        shutil.rmtree(src, ignore_errors=True)
        os.replace(tree, src)
        if kind == "tarball":
            _remember(path, ident)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    _say(f"Linux {ident.split('-')[0]} ready in {src}")
    return src


def main(argv):
    try:
        if argv[:1] == ["prepare"] and len(argv) == 1:
            print(prepare())
        elif argv[:1] == ["paths"] and len(argv) == 2:
            src, build = paths(argv[1])
            print("\n".join([src, build, built_marker(build)]))
        elif argv == ["cache"]:
            print(CACHE)
        else:
            print(__doc__.split("\n\n")[1], file=sys.stderr)
            return 2
    except SourceError as e:
        print(f"kernel-source: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
