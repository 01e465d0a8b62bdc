#!/usr/bin/python3
"""Writes the seeds of fuzz-k8s_state into fuzz/corpus/k8s_state/ (mode byte + input)."""
import base64
import json
import pathlib
import struct

out = pathlib.Path(__file__).resolve().parents[1] / "corpus" / "k8s_state"
out.mkdir(parents=True, exist_ok=True)


def entries(items):
    b = struct.pack("<I", len(items))
    for key, gen, deleted, val in items:
        b += struct.pack("<H", len(key)) + key + struct.pack("<QB", gen, deleted)
        b += struct.pack("<I", len(val)) + val
    return b


def secret(data, rv="123"):
    return json.dumps({"kind": "Secret", "apiVersion": "v1",
                       "metadata": {"name": "marblerun-state", "resourceVersion": rv},
                       "data": {k: base64.b64encode(v).decode() for k, v in data.items()}}).encode()


pending = entries([(b"manifest", 3, 0, b"\x01" * 40), (b"secret:a", 2, 1, b"")])
head = struct.pack("<QQI", 3, 5, 4) + struct.pack("<4Q", 0, 1, 2, 0)
seeds = {
    "head": b"\x00" + secret({"format": b"marblerun-c k8s v1", "head": head, "pending": pending,
                              "keycheck": b"\x02" * 44, "m.recovery": b"{}"}),
    "head-empty": b"\x00" + secret({"format": b"marblerun-c k8s v1", "head": head}),
    "shard": b"\x01" + secret({"shard": struct.pack("<Q", 2) + pending}, rv="77"),
    "peers": b"\x02" + json.dumps({"kind": "EndpointSliceList", "items": [
        {"addressType": "IPv4", "ports": [{"name": "grpc", "port": 5433}],
         "endpoints": [{"addresses": ["10.0.0.7"], "conditions": {"ready": True}},
                       {"addresses": ["10.0.0.8"], "conditions": {"ready": False}}]},
        {"addressType": "IPv6", "ports": [{"name": "grpc", "port": 5433}],
         "endpoints": [{"addresses": ["fd00::7"]}]}]}).encode(),
    "list": b"\x03" + pending,
}
for name, data in seeds.items():
    (out / name).write_bytes(data)
