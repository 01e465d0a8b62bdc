#!/usr/bin/python3
"""Writes the seeds of fuzz-k8s_watch into fuzz/corpus/k8s_watch/ (piece size byte + the
newline-delimited watch events)."""
import base64
import json
import pathlib
import struct

out = pathlib.Path(__file__).resolve().parents[1] / "corpus" / "k8s_watch"
out.mkdir(parents=True, exist_ok=True)


def entries(items):
    b = struct.pack("<I", len(items))
    for key, gen, deleted, val in items:
        b += struct.pack("<H", len(key)) + key + struct.pack("<QB", gen, deleted)
        b += struct.pack("<I", len(val)) + val
    return b


def event(typ, name, rv, data):
    return json.dumps({"type": typ, "object": {
        "kind": "Secret", "apiVersion": "v1",
        "metadata": {"name": name, "namespace": "mr", "resourceVersion": rv,
                     "labels": {"app.kubernetes.io/part-of": "marblerun",
                                "marblerun.edgeless.systems/state": "marblerun-state"}},
        "data": {k: base64.b64encode(v).decode() for k, v in data.items()}, "type": "Opaque"}})


pending = entries([(b"manifest", 3, 0, b"\x01" * 40), (b"secret:a", 2, 1, b"")])
head = struct.pack("<QQI", 3, 5, 4) + struct.pack("<4Q", 0, 1, 2, 0)
head_ev = event("MODIFIED", "marblerun-state", "120",
                {"format": b"marblerun-c k8s v1", "head": head, "pending": pending,
                 "keycheck": b"\x02" * 44})
shard_ev = event("ADDED", "marblerun-state-2", "119", {"shard": struct.pack("<Q", 2) + pending})
bookmark = json.dumps({"type": "BOOKMARK", "object": {"kind": "Secret", "apiVersion": "v1",
                                                      "metadata": {"resourceVersion": "130"}}})
gone = json.dumps({"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1",
                                               "status": "Failure", "reason": "Expired", "code": 410,
                                               "message": "too old resource version: 5 (90)"}})
deleted = event("DELETED", "marblerun-state-9", "140", {})
seeds = {
    "stream": b"\xff" + "\n".join([shard_ev, head_ev, bookmark, deleted, ""]).encode(),
    "split": b"\x06" + "\n".join([shard_ev, head_ev, ""]).encode(),
    "gone": b"\x20" + (bookmark + "\n" + gone + "\n").encode(),
    "partial": b"\x40" + (head_ev + "\n" + shard_ev[:50]).encode(),
}
for name, data in seeds.items():
    (out / name).write_bytes(data)
