#!/usr/bin/python3
"""Seeds for fuzz-etcd_watch: WatchResponses as etcd sends them (generated from our
proto/etcd.proto with grpc_tools). Mode byte first (0 raw, 1 harness seals the values)."""
import pathlib
import subprocess
import sys
import tempfile

src = pathlib.Path(__file__).resolve().parents[2]
out = src / "fuzz" / "corpus" / "etcd_watch"
tmp = tempfile.mkdtemp()
subprocess.run([sys.executable, "-m", "grpc_tools.protoc", f"-I{src / 'proto'}", f"--python_out={tmp}",
                str(src / "proto" / "etcd.proto")], check=True)
sys.path.insert(0, tmp)
import etcd_pb2 as pb  # noqa: E402

def kv(k, v, rev):
    return pb.KeyValue(key=k, value=v, mod_revision=rev, create_revision=rev, version=1)

seeds = {
    "created": pb.WatchResponse(header=pb.ResponseHeader(revision=5), created=True),
    "puts": pb.WatchResponse(header=pb.ResponseHeader(revision=7), events=[
        pb.Event(type=pb.Event.PUT, kv=kv(b"/f/state", b"3", 6)),
        pb.Event(type=pb.Event.PUT, kv=kv(b"/f/secret:a", b"\x00" * 40, 7)),
        pb.Event(type=pb.Event.PUT, kv=kv(b"/f/activations:x", b"1", 7))]),
    "delete": pb.WatchResponse(header=pb.ResponseHeader(revision=9), events=[
        pb.Event(type=pb.Event.DELETE, kv=kv(b"/f/secret:a", b"", 9)),
        pb.Event(type=pb.Event.PUT, kv=kv(b"/f/\x01rev", b"", 9)),
        pb.Event(type=pb.Event.PUT, kv=kv(b"/other/x", b"y", 9))]),
    "progress": pb.WatchResponse(header=pb.ResponseHeader(revision=12)),
}
out.mkdir(parents=True, exist_ok=True)
for name, msg in seeds.items():
    for mode in (0, 1):
        (out / f"{name}-{mode}").write_bytes(bytes([mode]) + msg.SerializeToString())
