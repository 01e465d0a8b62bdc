"""TTLS bulk test program (tests/e2e/test_ttls.py): 256 MiB each way at the same time, with
checksums; the server sends with os.sendfile, the client half-closes after sending.

    bulk.py server PORT      one connection, then exit
    bulk.py client PORT      prints "bulk ok" when both directions arrived intact
"""
import hashlib
import os
import socket
import sys
import tempfile
import threading

MIB = 1 << 20
TOTAL = 256 * MIB
SERVER_BLOCK = hashlib.shake_256(b"ttls bulk server").digest(16 * MIB)
CLIENT_BLOCK = hashlib.shake_256(b"ttls bulk client").digest(MIB)


def expected(block):
    h = hashlib.sha256()
    for _ in range(TOTAL // len(block)):
        h.update(block)
    return h.hexdigest()


def server(port):
    ls = socket.create_server(("127.0.0.1", port))
    conn, _ = ls.accept()
    got = {}

    def reader():
        h, n = hashlib.sha256(), 0
        buf = bytearray(MIB)
        while True:
            k = conn.recv_into(buf)
            if k == 0:
                break
            h.update(memoryview(buf)[:k])
            n += k
        got["n"], got["sha"] = n, h.hexdigest()

    t = threading.Thread(target=reader)
    t.start()
    with tempfile.TemporaryFile() as f:
        f.write(SERVER_BLOCK)
        f.flush()
        for _ in range(TOTAL // len(SERVER_BLOCK)):
            off = 0
            while off < len(SERVER_BLOCK):
                off += os.sendfile(conn.fileno(), f.fileno(), off, len(SERVER_BLOCK) - off)
    t.join()  # the client's half-close ends its stream
    assert got["n"] == TOTAL, got
    conn.sendall(got["sha"].encode())  # still possible: only the client's direction is closed
    conn.close()
    print("server done", got["n"], flush=True)


def client(port):
    s = socket.create_connection(("localhost", port))

    def writer():
        for _ in range(TOTAL // len(CLIENT_BLOCK)):
            s.sendall(CLIENT_BLOCK)
        s.shutdown(socket.SHUT_WR)

    t = threading.Thread(target=writer)
    t.start()
    h, n, tail = hashlib.sha256(), 0, b""
    buf = bytearray(MIB)
    while True:
        k = s.recv_into(buf)
        if k == 0:
            break
        data = memoryview(buf)[:k]
        take = min(k, max(0, TOTAL - n))
        h.update(data[:take])
        tail += bytes(data[take:])
        n += take
    t.join()
    s.close()
    assert n == TOTAL, n
    assert h.hexdigest() == expected(SERVER_BLOCK), "server -> client data differs"
    assert tail.decode() == expected(CLIENT_BLOCK), f"client -> server data differs: {tail!r}"
    print("bulk ok", flush=True)


if __name__ == "__main__":
    (server if sys.argv[1] == "server" else client)(int(sys.argv[2]))
