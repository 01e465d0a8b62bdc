"""TTLS fork test program.

    forking.py PORT1 PORT2
        PORT1: two pre-forked children accept on the inherited listener ("prefork")
        PORT2: the parent accepts, a forked child answers on the inherited connection
               ("handoff"), the parent closes its copy at once
    forking.py client PORT1 PORT2 N
        N requests to each port; prints every answer and "fork ok"
"""
import os
import signal
import socket
import sys


def answer(conn, kind):
    line = b""
    while not line.endswith(b"\n"):
        chunk = conn.recv(100)
        if not chunk:
            return
        line += chunk
    conn.sendall(f"served {kind} {os.getpid()}\n".encode())


def server(p1, p2):
    l1 = socket.create_server(("127.0.0.1", p1))
    l2 = socket.create_server(("127.0.0.1", p2))
    kids = []
    for _ in range(2):
        pid = os.fork()
        if pid == 0:
            l2.close()
            while True:
                c, _ = l1.accept()
                answer(c, "prefork")
                c.close()
        kids.append(pid)
    l1.close()
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    try:
        while True:
            c, _ = l2.accept()
            if os.fork() == 0:
                l2.close()
                answer(c, "handoff")
                c.close()
                os._exit(0)
            c.close()
    finally:
        for k in kids:
            os.kill(k, signal.SIGTERM)


def client(p1, p2, n):
    for port in (p1, p2):
        for _ in range(n):
            with socket.create_connection(("localhost", port), timeout=20) as s:
                s.sendall(b"hi\n")
                data = b""
                while not data.endswith(b"\n"):
                    chunk = s.recv(100)
                    assert chunk, "connection closed before the answer"
                    data += chunk
                print(data.decode().strip(), flush=True)
    print("fork ok", flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "client":
        client(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
    else:
        server(int(sys.argv[1]), int(sys.argv[2]))
