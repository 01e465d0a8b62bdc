#!/usr/bin/env python3
"""Writes the seed corpora of the network-layer fuzz targets (fuzz/corpus/{http1,grpc_frame,h2}).

Run from anywhere; the seeds are committed, this script documents how they were made.
"""
import pathlib
import struct

ROOT = pathlib.Path(__file__).resolve().parents[1] / "corpus"


def write(target, name, data):
    d = ROOT / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data)


# ---- HTTP/1.1 ----
H1 = {
    "get_status": b"GET /status HTTP/1.1\r\nHost: localhost\r\n\r\n",
    "pipelined": b"GET /status HTTP/1.1\r\nHost: a\r\n\r\nGET /status?s=a&s=b HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    "post_cl": b"POST /manifest HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n{\"a\":\"b\"}\r\n",
    "post_chunked": b"POST /manifest HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n0\r\nT: 1\r\n\r\n",
    "expect": b"POST /manifest HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nok",
    # /secrets has a precheck: without X-Take a large body is withheld (read and dropped)
    "withheld_cl": b"POST /secrets HTTP/1.1\r\nHost: a\r\nContent-Length: 70000\r\n\r\n" + b"x" * 300,
    "withheld_chunked": b"POST /secrets HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\nGET /status HTTP/1.1\r\n\r\n",
    "taken": b"POST /secrets HTTP/1.1\r\nHost: a\r\nX-Take: 1\r\nContent-Length: 5\r\n\r\nhello",
    "get_with_body": b"GET /status HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
    "redirect": b"GET //a/../status?x=1 HTTP/1.1\r\nHost: a\r\n\r\n",
    "escaped": b"GET /stat%75s HTTP/1.0\n\n",
    "unknown": b"PUT /nope HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
    "head": b"HEAD /status HTTP/1.1\r\nHost: a\r\n\r\n",
    "metrics": b"GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n",
    "too_big": b"POST /manifest HTTP/1.1\r\nHost: a\r\nContent-Length: 99999\r\n\r\nxx",
    "bad_version": b"GET / HTTP/2.0\r\nHost: a\r\n\r\n",
}
for k, v in H1.items():
    write("http1", k, v)


# ---- gRPC frames ----
def pb_field(num, data):
    return bytes([(num << 3) | 2, len(data)]) + data


act = pb_field(1, b"quote") + pb_field(2, b"csr") + pb_field(3, b"backend") + pb_field(4, b"uuid-1")
FRAMES = {
    "activate": b"\0" + struct.pack(">I", len(act)) + act,
    "empty": b"\0\0\0\0\0",
    "compressed": b"\1\0\0\0\3abc",
    "truncated": b"\0\0\0\0\x10abc",
    "two": b"\0\0\0\0\1a\0\0\0\0\1b",
    "query": b"s=a&s=b+c%20d&t=%zz;x",
    "percent": "denied: 100% über\n".encode(),
}
for k, v in FRAMES.items():
    write("grpc_frame", k, v)


# ---- HTTP/2 ----
def frame(ftype, flags, stream, payload):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", stream) + payload


def hpack(headers):
    out = b""
    for name, value in headers:
        out += b"\x00" + bytes([len(name)]) + name + bytes([len(value)]) + value
    return out


PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(4, 0, 0, b"")
DATA, HEADERS, SETTINGS_ACK, END_STREAM, END_HEADERS = 0, 1, 1, 1, 4


def grpc_call(stream, path, msg, extra=()):
    hdrs = [(b":method", b"POST"), (b":scheme", b"https"), (b":path", path),
            (b":authority", b"localhost"), (b"content-type", b"application/grpc"),
            (b"te", b"trailers"), *extra]
    return (frame(HEADERS, END_HEADERS, stream, hpack(hdrs)) +
            frame(DATA, END_STREAM, stream, b"\0" + struct.pack(">I", len(msg)) + msg))


def rest(stream, method, path, body=b""):
    hdrs = [(b":method", method), (b":scheme", b"https"), (b":path", path),
            (b":authority", b"localhost")]
    if not body:
        return frame(HEADERS, END_HEADERS | END_STREAM, stream, hpack(hdrs))
    return frame(HEADERS, END_HEADERS, stream, hpack(hdrs)) + frame(DATA, END_STREAM, stream, body)


H2 = {
    "grpc_activate": PREFACE + frame(4, SETTINGS_ACK, 0, b"") + grpc_call(1, b"/rpc.Marble/Activate", act),
    "grpc_fail": PREFACE + grpc_call(1, b"/rpc.Marble/Activate", b"xfail"),
    "grpc_unknown": PREFACE + grpc_call(1, b"/rpc.Marble/Nope", b"") + grpc_call(3, b"/x.Y/Z", b""),
    "grpc_gzip": PREFACE + grpc_call(1, b"/rpc.Marble/Activate", b"", [(b"grpc-encoding", b"gzip")]),
    "grpc_many": PREFACE + b"".join(grpc_call(2 * i + 1, b"/rpc.Marble/Activate", act) for i in range(5)),
    "rest_get": PREFACE + rest(1, b"GET", b"/status?s=1") + rest(3, b"GET", b"//status"),
    "rest_post": PREFACE + rest(1, b"POST", b"/manifest", b"{}") + rest(3, b"DELETE", b"/nope"),
    "rest_withheld": PREFACE + rest(1, b"POST", b"/secrets", b"y" * 3000) + rest(3, b"POST", b"/nope", b"z" * 100),
    "rst_ping_goaway": PREFACE + rest(1, b"GET", b"/status") + frame(3, 0, 1, b"\0\0\0\x08") +
                       frame(6, 0, 0, b"12345678") + frame(7, 0, 0, b"\0\0\0\0\0\0\0\0"),
}
for k, v in H2.items():
    write("h2", k, v)
