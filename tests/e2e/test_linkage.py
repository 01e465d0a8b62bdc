"""What the Coordinator loads (issue 12). In an enclave every loaded library is trusted code, so
its dynamic-library closure must be exactly the libraries it uses. In particular no libcurl and
nothing libcurl brings with it (gnutls, krb5, ldap, ssh2, rtmp, ...): collateral is fetched with
libevent's evhttp over OpenSSL (src/attest/collateral_http.c). The CLI and the premain may keep
libcurl; only the Coordinator is held to the list.
"""
import re
import subprocess

import pytest

# Why each one is there.
COORDINATOR_LIBS = {
    "linux-vdso",         # the kernel's vDSO (clock_gettime)
    "ld-linux-x86-64",    # the dynamic loader (also NEEDED for __tls_get_addr)
    "libc",               # C library (libm, libpthread, libdl are part of it in glibc 2.34+)
    "libssl",             # TLS of the client and mesh APIs, and of the collateral fetch
    "libcrypto",          # all cryptography, X.509, quote verification
    "libjansson",         # JSON: manifest, API bodies, collateral, logs
    "libevent_core",      # the server's event loop and bufferevents
    "libevent_openssl",   # TLS bufferevents (server connections, collateral fetch)
    "libevent_pthreads",  # libevent locking for the worker threads
    "libevent_extra",     # evhttp: the collateral fetch's HTTP/1.1 client
    "libnghttp2",         # HTTP/2 for gRPC (mesh API) and h2 clients
    "libprotobuf-c",      # the gRPC Activate messages
}
FORBIDDEN = ("libcurl", "libgnutls", "libkrb5", "libgssapi", "libldap", "liblber", "libssh",
             "librtmp", "libidn2", "libpsl", "libbrotli", "libzstd", "libnettle", "libsasl2",
             "libp11-kit", "libevent-2.1")
SANITIZER_RUNTIMES = ("libasan", "libubsan", "liblsan", "libtsan")


def stem(name):
    """libevent_core-2.1.so.7 -> libevent_core; ld-linux-x86-64.so.2 -> ld-linux-x86-64."""
    base = name.rsplit("/", 1)[-1].split(".so", 1)[0]
    return re.sub(r"-\d+(\.\d+)+$", "", base)


def ldd(path):
    """{stem: resolved path or None} of the whole closure."""
    out = subprocess.run(["ldd", str(path)], capture_output=True, text=True, check=True).stdout
    libs = {}
    for line in out.splitlines():
        line = line.strip()
        m = re.match(r"(\S+)(?: => (\S+))?", line)
        if m:
            libs[stem(m.group(1))] = m.group(2) if m.group(2) not in (None, "not") else m.group(1)
    return libs


def needed(path):
    out = subprocess.run(["readelf", "-d", str(path)], capture_output=True, text=True,
                         check=True).stdout
    return {stem(n) for n in re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out)}


def sanitizer_extras(libs):
    """Under `make asan` the runtimes and what they load are allowed as well."""
    extra = set()
    for s, path in libs.items():
        if s.startswith(SANITIZER_RUNTIMES) and path:
            extra.add(s)
            extra |= set(ldd(path))
    return extra - COORDINATOR_LIBS


def test_coordinator_closure_is_the_allowlist(bin_dir):
    coord = bin_dir / "marblerun-coordinator"
    if not coord.exists():
        pytest.skip("no marblerun-coordinator in this build")
    libs = ldd(coord)
    for s in libs:
        assert not s.startswith(FORBIDDEN), f"the Coordinator loads {s} ({libs[s]})"
    extra = sanitizer_extras(libs)
    assert set(libs) - extra == COORDINATOR_LIBS, (
        f"unexpected: {sorted(set(libs) - extra - COORDINATOR_LIBS)}, "
        f"missing: {sorted(COORDINATOR_LIBS - set(libs))}")
    # and it asks for them itself: nothing comes in only as a dependency of a dependency
    # (the loader is NEEDED only when the linker kept a __tls_get_addr call: not at -O0)
    optional = {"linux-vdso", "ld-linux-x86-64"}
    direct, want = needed(coord) - extra - optional, COORDINATOR_LIBS - optional
    assert direct == want, f"NEEDED differs from the list: {sorted(direct ^ want)}"


def test_cli_and_premain_still_link(bin_dir):
    """They may keep libcurl (their own HTTP clients); the collateral fetcher they share with
    the Coordinator needs evhttp, which they load too."""
    for name in ("marblerun", "marblerun-premain"):
        path = bin_dir / name
        if not path.exists():
            pytest.skip(f"no {name} in this build")
        libs = ldd(path)
        assert "libevent_extra" in libs and "libcurl" in libs, sorted(libs)
        assert all(p for p in libs.values()), f"{name}: unresolved libraries {libs}"
