"""TTLS socket-API test program: one marble that is both the client and the server of a TTLS
port (its Incoming and Outgoing entries name it) exercises the calls an application may use
on a TTLS socket and checks that each behaves as on a plain TCP socket.

    socket_api.py PORT DEAD_PORT RAW_PORT
        PORT       TTLS both ways
        DEAD_PORT  Outgoing entry, nothing listens: connect() fails as plain TCP would
        RAW_PORT   Outgoing entry whose server is plain (this program, not configured as
                   Incoming): the TLS handshake fails, connect() gives ECONNREFUSED
    prints "ok <check>" per check and "api ok" at the end
"""
import errno
import fcntl
import os
import select
import socket
import subprocess
import sys
import tempfile
import threading
import time


def ok(name):
    print("ok", name, flush=True)


def pair(ls, port, blocking=True):
    """A connected (client, server) pair through TTLS. The server accepts in a thread: a
    blocking connect() waits for the TLS handshake, which needs the server's accept()."""
    got = []
    t = threading.Thread(target=lambda: got.append(ls.accept()))
    t.start()
    c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if blocking:
        c.connect(("127.0.0.1", port))
    else:
        c.setblocking(False)
        assert c.connect_ex(("127.0.0.1", port)) == errno.EINPROGRESS
        # not writable before the handshake is done, writable after it
        _, w, _ = select.select([], [c], [], 10)
        assert w == [c]
        assert c.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0
        c.setblocking(True)
    t.join()
    s, addr = got[0]
    return c, s, addr


def recv_exact(s, n):
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        assert chunk, f"EOF after {len(data)} of {n} bytes"
        data += chunk
    return data


def main(port, dead, raw):
    ls = socket.create_server(("127.0.0.1", port))
    # ---- names and options
    c, s, addr = pair(ls, port)
    assert c.getpeername() == ("127.0.0.1", port), c.getpeername()
    assert s.getpeername() == c.getsockname() == addr, (s.getpeername(), c.getsockname(), addr)
    assert s.getsockname() == ("127.0.0.1", port)
    for x in (c, s):
        assert x.getsockopt(socket.SOL_SOCKET, socket.SO_DOMAIN) == socket.AF_INET
        assert x.getsockopt(socket.SOL_SOCKET, socket.SO_PROTOCOL) == socket.IPPROTO_TCP
        assert x.getsockopt(socket.SOL_SOCKET, socket.SO_TYPE) == socket.SOCK_STREAM
        x.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        assert x.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
        x.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        assert x.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
    ok("names and options")
    # ---- the byte calls
    c.send(b"send")
    assert recv_exact(s, 4) == b"send"
    os.write(c.fileno(), b"write")
    got = b""
    while len(got) < 5:
        got += os.read(s.fileno(), 5 - len(got))
    assert got == b"write", got
    os.writev(c.fileno(), [b"wri", b"tev"])
    buf1, buf2 = bytearray(3), bytearray(100)
    n = os.readv(s.fileno(), [buf1, buf2])
    got = bytes(buf1) + bytes(buf2[: n - 3]) if n > 3 else bytes(buf1[:n])
    while len(got) < 6:
        got += s.recv(6 - len(got))
    assert got == b"writev", got
    c.sendmsg([b"send", b"msg"])
    data, anc, flags, a = s.recvmsg(100)
    while len(data) < 7:
        data += s.recv(7 - len(data))
    assert data == b"sendmsg" and anc == [] and a is None, (data, anc, a)
    c.sendto(b"sendto", ("127.0.0.1", port))  # a destination on a connected TCP socket: ignored
    d, a = s.recvfrom(100)
    while len(d) < 6:
        d += s.recv(6 - len(d))
    assert d == b"sendto" and a is None, (d, a)
    c.sendall(b"peek")
    time.sleep(0.05)
    assert s.recv(4, socket.MSG_PEEK) == b"peek" and recv_exact(s, 4) == b"peek"
    ok("send recv write read writev readv sendmsg recvmsg sendto recvfrom peek")
    # ---- non-blocking and readiness
    s.setblocking(False)
    try:
        s.recv(10)
        raise AssertionError("recv on an empty non-blocking socket returned")
    except BlockingIOError:
        pass
    assert select.select([s], [], [], 0.1)[0] == []
    p = select.poll()
    p.register(s, select.POLLIN)
    assert p.poll(100) == []
    ep = select.epoll()
    ep.register(s.fileno(), select.EPOLLIN | select.EPOLLET)
    assert ep.poll(0.1) == []
    c.sendall(b"ready")
    assert ep.poll(5) == [(s.fileno(), select.EPOLLIN)]
    assert select.select([s], [], [], 5)[0] == [s]
    assert p.poll(5000)[0][1] & select.POLLIN
    assert s.recv(100) == b"ready"
    try:
        s.recv(10)
        raise AssertionError("recv after draining returned")
    except BlockingIOError:
        pass
    ep.close()
    s.setblocking(True)
    ok("non-blocking EAGAIN, select poll epoll readiness")
    # ---- descriptors
    d1 = os.dup(c.fileno())
    d2 = fcntl.fcntl(c.fileno(), fcntl.F_DUPFD_CLOEXEC, 0)
    d3 = os.dup(c.fileno())
    d4 = os.open("/dev/null", os.O_RDONLY)
    os.dup2(d3, d4)
    for d in (d1, d2, d4):
        x = socket.socket(fileno=os.dup(d))
        assert x.getpeername() == ("127.0.0.1", port) and x.family == socket.AF_INET
        x.sendall(b"dup")
        assert recv_exact(s, 3) == b"dup"
        x.close()
    for d in (d1, d2, d3, d4):
        os.close(d)
    c.sendall(b"still")
    assert recv_exact(s, 5) == b"still"
    ok("dup dup2 fcntl(F_DUPFD_CLOEXEC)")
    # ---- sendfile and splice
    with tempfile.TemporaryFile() as f:
        f.write(b"x" * 100000)
        f.flush()
        sent = 0
        while sent < 100000:
            sent += os.sendfile(c.fileno(), f.fileno(), sent, 100000 - sent)
    assert recv_exact(s, 100000) == b"x" * 100000
    r, w = os.pipe()
    c.sendall(b"splice!")
    n = 0
    while n < 7:
        n += os.splice(s.fileno(), w, 7 - n)
    assert os.read(r, 7) == b"splice!"
    os.close(r)
    os.close(w)
    ok("sendfile splice")
    # ---- half-close: the server reads EOF and can still answer; the client still reads
    c.sendall(b"request")
    c.shutdown(socket.SHUT_WR)
    assert recv_exact(s, 7) == b"request" and s.recv(10) == b""
    s.sendall(b"answer after half-close")
    assert recv_exact(c, 23) == b"answer after half-close"
    s.close()
    assert c.recv(10) == b""
    c.close()
    ok("half-close")
    # ---- non-blocking connect
    c, s, _ = pair(ls, port, blocking=False)
    c.sendall(b"nb")
    assert recv_exact(s, 2) == b"nb"
    assert c.getpeername() == ("127.0.0.1", port)
    c.close()
    assert s.recv(10) == b""
    s.close()
    ok("non-blocking connect")
    # ---- fork + exec: an inherited descriptor keeps working in another program
    c, s, _ = pair(ls, port)
    child = subprocess.Popen([sys.executable, "-c",
                              "import os,sys; fd=int(sys.argv[1]); os.write(fd, b'from exec');"
                              "print(os.read(fd, 5).decode())", str(c.fileno())],
                             pass_fds=[c.fileno()], stdout=subprocess.PIPE)
    c.close()  # the child's copy keeps the connection open
    assert recv_exact(s, 9) == b"from exec"
    s.sendall(b"reply")
    out, _ = child.communicate(timeout=20)
    assert out == b"reply\n", out
    assert s.recv(10) == b""  # the child exited: its end closed
    s.close()
    ok("fork and exec with an inherited descriptor")
    # ---- failures map to plain errno values
    x = socket.socket()
    assert x.connect_ex(("127.0.0.1", dead)) == errno.ECONNREFUSED
    x.close()
    rl = socket.create_server(("127.0.0.1", raw))  # plain: it does not speak TLS

    def plain_server():
        conn, _ = rl.accept()
        conn.sendall(b"this is not TLS\r\n")
        conn.close()

    t = threading.Thread(target=plain_server)
    t.start()
    x = socket.socket()
    e = x.connect_ex(("127.0.0.1", raw))
    assert e == errno.ECONNREFUSED, errno.errorcode.get(e, e)
    t.join()
    x.close()
    rl.close()
    ok("ECONNREFUSED for a failed TCP connect and for a failed handshake")
    # ---- unix sockets and UDP stay untouched
    a, b = socket.socketpair()
    a.sendall(b"unix")
    assert b.recv(4) == b"unix"
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("127.0.0.1", 0))
    v = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    v.connect(("127.0.0.1", port))  # a configured address, but UDP
    v.sendto(b"udp", u.getsockname())
    assert u.recvfrom(10)[0] == b"udp"
    ok("unix and udp untouched")
    print("api ok", flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]))
