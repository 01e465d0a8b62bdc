"""A fake Linux configfs-tsm report directory (spec/attestation.md §5.3) for end-to-end tests,
so that the premain's real `tsm` quote source runs against it (EDG_ATTESTATION_TSM_DIR).

The kernel creates a report entry's attribute files on mkdir and produces `outblob` when it is
read, from what was written to `inblob`. A plain directory cannot do that, so a thread of the
test process serves each new entry:

  1. it creates `inblob` (empty), `provider` (tdx_guest or sev_guest) and `outblob` as a FIFO,
     then `generation` ("0") last, by rename: the premain waits for `generation`;
  2. the premain writes the 64 bytes of report data to `inblob`, then opens `outblob`, which
     lets the helper's open of the FIFO for writing succeed;
  3. the helper reads `inblob`, makes the quote or report with a callback (the softtdx / softsnp
     tools), writes `auxblob` (SNP), sets `generation` to "1" (one write happened, as the
     kernel counts) and only then writes the blob into the FIFO and closes it.

Run as a program it serves a directory until interrupted, making each blob with a command
(docs/cvm.md): `{report_data}` in it becomes the 64 bytes of inblob in hex, `{auxblob}` a file
whose content becomes the entry's auxblob; the command's stdout is the outblob:

  python3 tests/e2e/faketsm.py DIR --provider sev_guest -- \
      marblerun-softsnp report SNPDIR --report-data {report_data} --aux {auxblob}

Every wait is bounded (ENTRY_TIMEOUT). Entries stay in the directory (the premain's rmdir of
a non-empty plain directory fails, which it ignores); `served` counts the entries served and
`errors` keeps what went wrong in the helper.
"""
import argparse
import errno
import os
import pathlib
import subprocess
import sys
import tempfile
import threading
import time

POLL = 0.005
ENTRY_TIMEOUT = 20.0


def _write_atomic(path: pathlib.Path, data: bytes):
    tmp = path.with_name("." + path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


class FakeTSM:
    def __init__(self, root, provider, make_blob):
        """root: the directory (created); provider: "tdx_guest" or "sev_guest";
        make_blob(report_data: bytes) -> (outblob: bytes, auxblob: bytes or None)."""
        self.root = pathlib.Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.provider = provider
        self.make_blob = make_blob
        self.served = 0
        self.errors = []
        self.inblobs = []
        self._seen = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=ENTRY_TIMEOUT + 5)

    def _watch(self):
        while not self._stop.is_set():
            for entry in self.root.iterdir():
                if entry.is_dir() and entry.name not in self._seen:
                    self._seen.add(entry.name)
                    threading.Thread(target=self._serve_safely, args=(entry,), daemon=True).start()
            time.sleep(POLL)

    def _serve_safely(self, entry):
        try:
            self._serve(entry)
            self.served += 1
        except Exception as e:  # reported to the test through self.errors
            self.errors.append(f"{entry.name}: {e!r}")

    def _open_fifo_for_writing(self, path):
        deadline = time.time() + ENTRY_TIMEOUT
        while True:
            try:
                return os.open(path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as e:
                if e.errno != errno.ENXIO or time.time() > deadline:
                    raise
            if self._stop.is_set():
                raise TimeoutError("stopped before the reader came")
            time.sleep(POLL)

    def _serve(self, entry):
        (entry / "inblob").write_bytes(b"")
        (entry / "provider").write_text(self.provider + "\n")
        os.mkfifo(entry / "outblob", 0o600)
        _write_atomic(entry / "generation", b"0\n")
        fd = self._open_fifo_for_writing(entry / "outblob")
        try:
            os.set_blocking(fd, True)
            rd = (entry / "inblob").read_bytes()
            self.inblobs.append(rd)
            out, aux = self.make_blob(rd)
            if aux is not None:
                _write_atomic(entry / "auxblob", aux)
            _write_atomic(entry / "generation", b"1\n")
            view = memoryview(out)
            while view:
                n = os.write(fd, view)
                view = view[n:]
        finally:
            os.close(fd)


def command_blob_maker(argv):
    """make_blob for FakeTSM from a command line with {report_data} and {auxblob}."""
    def make(rd):
        with tempfile.TemporaryDirectory(prefix="faketsm-") as d:
            aux = pathlib.Path(d) / "auxblob"
            args = [a.replace("{report_data}", rd.hex()).replace("{auxblob}", str(aux)) for a in argv]
            out = subprocess.run(args, check=True, capture_output=True, timeout=ENTRY_TIMEOUT).stdout
            return out, (aux.read_bytes() if aux.exists() else None)
    return make


def main():
    argv = sys.argv[1:]
    cut = argv.index("--") if "--" in argv else len(argv)
    ap = argparse.ArgumentParser(
        description="Serve a fake configfs-tsm report directory (tests).",
        usage="faketsm.py DIR --provider {tdx_guest,sev_guest} -- COMMAND...")
    ap.add_argument("dir")
    ap.add_argument("--provider", choices=["tdx_guest", "sev_guest"], required=True)
    a = ap.parse_args(argv[:cut])
    cmd = argv[cut + 1:]
    if not cmd:
        ap.error("no command given after --")
    with FakeTSM(a.dir, a.provider, command_blob_maker(cmd)) as t:
        print(f"faketsm: serving {t.root} as {a.provider}", file=sys.stderr, flush=True)
        try:
            while True:
                time.sleep(1)
                while t.errors:
                    print("faketsm: " + t.errors.pop(0), file=sys.stderr, flush=True)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
