"""Hostile clients for the denial-of-service tests (issue 18): connection floods that never
start (or never use) a TLS handshake, and uploads that never finish, over HTTP/1.1 and HTTP/2.
Every flood is bounded: a fixed number of sockets, stopped by stop() or after `duration`."""
import resource
import selectors
import socket
import ssl
import threading
import time

import h2.config
import h2.connection


def raise_nofile(want):
    """Lifts this process's descriptor limit to at least `want` (up to the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def client_context(alpn=("http/1.1",)):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(list(alpn))
    return ctx


class ConnFlood(threading.Thread):
    """Keeps `n` connections from `source` to (host, port) open for `duration` seconds,
    reopening each one the server closes. With tls=True every connection completes its
    handshake and then sits idle; otherwise it never sends a byte."""

    def __init__(self, host, port, n, source="127.0.0.2", tls=False, duration=60.0, certfile=None,
                 keyfile=None, alpn=("http/1.1",)):
        super().__init__(daemon=True)
        self.addr, self.n, self.source, self.tls = (host, port), n, source, tls
        self.duration = duration
        self.ctx = client_context(alpn) if tls else None
        if self.ctx is not None and certfile:
            self.ctx.load_cert_chain(certfile, keyfile)
        self.stop_ev = threading.Event()
        self.opened = 0       # connections established (and handshaken with tls)
        self.closed_by_peer = 0
        self.failed = 0       # connect or handshake failures
        self.open_now = 0
        self.peak_open = 0
        self.sel = selectors.DefaultSelector()
        self.socks = {}

    def _open(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        try:
            s.bind((self.source, 0))
        except OSError:
            s.close()
            self.failed += 1
            return
        s.connect_ex(self.addr)
        self.socks[s.fileno()] = ["connecting", s]
        self.sel.register(s, selectors.EVENT_WRITE)

    def _drop(self, fd, by_peer):
        st, s = self.socks.pop(fd)
        try:
            self.sel.unregister(s)
        except (KeyError, ValueError):
            pass
        s.close()
        if st == "open":
            self.open_now -= 1
            if by_peer:
                self.closed_by_peer += 1
        else:
            self.failed += 1

    def _established(self, ent):
        ent[0] = "open"
        self.opened += 1
        self.open_now += 1
        self.peak_open = max(self.peak_open, self.open_now)

    def _step(self, key, mask):
        fd = key.fd
        ent = self.socks.get(fd)
        if ent is None:
            return
        st, s = ent
        try:
            if st == "connecting":
                err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err != 0:
                    self._drop(fd, False)
                    return
                if not self.tls:
                    self._established(ent)
                    self.sel.modify(s, selectors.EVENT_READ)
                    return
                t = self.ctx.wrap_socket(s, do_handshake_on_connect=False)
                self.sel.unregister(s)
                ent[0], ent[1] = "handshake", t
                self.socks[fd] = ent
                self.sel.register(t, selectors.EVENT_READ | selectors.EVENT_WRITE)
                st, s = ent
            if st == "handshake":
                try:
                    s.do_handshake()
                except ssl.SSLWantReadError:
                    self.sel.modify(s, selectors.EVENT_READ)
                    return
                except ssl.SSLWantWriteError:
                    self.sel.modify(s, selectors.EVENT_WRITE)
                    return
                self._established(ent)
                self.sel.modify(s, selectors.EVENT_READ)
                return
            # open: anything readable is the server closing (or a TLS alert/ticket)
            try:
                data = s.recv(4096)
            except (ssl.SSLWantReadError, BlockingIOError):
                return
            if not data:
                self._drop(fd, True)
        except (OSError, ssl.SSLError, ValueError):
            self._drop(fd, st == "open")

    def run(self):
        end = time.time() + self.duration
        try:
            while not self.stop_ev.is_set() and time.time() < end:
                while len(self.socks) < self.n:
                    self._open()
                for key, mask in self.sel.select(timeout=0.05):
                    self._step(key, mask)
        finally:
            for fd in list(self.socks):
                st, s = self.socks.pop(fd)
                s.close()
            self.sel.close()

    def stop(self):
        self.stop_ev.set()
        self.join(timeout=30)


class FloodProcess:
    """ConnFloods run in a child process: the attacker's own threads must not hold the GIL of
    the process whose clients the test measures (a real client is not slowed by the attacker
    on its own CPU). `stats()` after stop() gives the floods' counters."""

    def __init__(self, floods_args):
        import multiprocessing as mp
        ctx = mp.get_context("fork")
        self._stop = ctx.Event()
        self._q = ctx.Queue()
        self._p = ctx.Process(target=self._run, args=(floods_args, self._stop, self._q), daemon=True)
        self._stats = None

    @staticmethod
    def _run(floods_args, stop, q):
        raise_nofile(20000)
        floods = [ConnFlood(*a, **kw) for a, kw in floods_args]
        for f in floods:
            f.start()
        stop.wait(max(f.duration for f in floods))
        for f in floods:
            f.stop()
        q.put({k: sum(getattr(f, k) for f in floods)
               for k in ("opened", "closed_by_peer", "failed", "peak_open")})

    def start(self):
        self._p.start()
        return self

    def stop(self):
        self._stop.set()
        try:
            self._stats = self._q.get(timeout=60)
        finally:
            self._p.join(timeout=30)
            if self._p.is_alive():
                self._p.kill()
        return self._stats


def _h1_upload_head(path, size, host="localhost"):
    return (f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {size}\r\n\r\n").encode()


class StalledUploads(threading.Thread):
    """`n` TLS connections that each announce a body of `size` bytes on POST `path`, send all
    of it but the last byte as fast as the server takes it, and then wait forever (HTTP/1.1).
    `answers` collects the first bytes of what the server sent back, per connection."""

    def __init__(self, host, port, n, path="/manifest", size=int(7.9 * 1024 * 1024), source="127.0.0.2",
                 duration=60.0):
        super().__init__(daemon=True)
        self.addr, self.n, self.path, self.size = (host, port), n, path, size
        self.source, self.duration = source, duration
        self.stop_ev = threading.Event()
        self.sent = 0
        self.answers = []
        self.errors = 0
        self.done_sending = threading.Event()

    def _one(self, ctx):
        raw = socket.create_connection(self.addr, timeout=30, source_address=(self.source, 0))
        t = ctx.wrap_socket(raw)
        t.settimeout(5)
        t.sendall(_h1_upload_head(self.path, self.size))
        return t

    def run(self):
        ctx = client_context()
        conns = []
        try:
            for _ in range(self.n):
                try:
                    conns.append(self._one(ctx))
                except (OSError, ssl.SSLError):
                    self.errors += 1
            chunk = b"x" * 65536
            left = {id(c): self.size - 1 for c in conns}
            got = {id(c): b"" for c in conns}
            live = list(conns)
            end = time.time() + self.duration

            def poll_answer(c):
                # like a real client, read what the server says while still sending
                if got[id(c)]:
                    return
                try:
                    c.setblocking(False)
                    got[id(c)] = c.recv(200)
                except (ssl.SSLWantReadError, BlockingIOError):
                    pass
                except (OSError, ssl.SSLError):
                    pass
            while live and not self.stop_ev.is_set() and time.time() < end:
                nxt = []
                for c in live:
                    n = min(len(chunk), left[id(c)])
                    poll_answer(c)
                    try:
                        c.settimeout(0.2)
                        c.sendall(chunk[:n])
                        self.sent += n
                        left[id(c)] -= n
                        if left[id(c)] > 0:
                            nxt.append(c)
                    except (socket.timeout, ssl.SSLWantWriteError):
                        nxt.append(c)  # the server is not reading: keep trying
                    except (OSError, ssl.SSLError):
                        pass  # closed by the server
                live = nxt
            self.done_sending.set()
            for c in conns:
                if not got[id(c)]:
                    try:
                        c.settimeout(0.5)
                        got[id(c)] = c.recv(200)
                    except (OSError, ssl.SSLError):
                        pass
                self.answers.append(got[id(c)])
            self.stop_ev.wait(max(0.0, end - time.time()))
        finally:
            self.done_sending.set()
            for c in conns:
                try:
                    c.close()
                except OSError:
                    pass

    def stop(self):
        self.stop_ev.set()
        self.join(timeout=60)


class StalledH2Streams(threading.Thread):
    """One HTTP/2 connection (TLS, ALPN h2) with `streams` POST streams of `size` bytes each; all
    bytes but the last are sent (as far as flow control lets them), the streams never end."""

    def __init__(self, host, port, streams=40, path="/manifest", size=int(7.9 * 1024 * 1024),
                 source="127.0.0.2", duration=60.0, certfile=None, keyfile=None,
                 content_type="application/json", grpc=False):
        super().__init__(daemon=True)
        self.addr, self.streams, self.path, self.size = (host, port), streams, path, size
        self.source, self.duration = source, duration
        self.certfile, self.keyfile = certfile, keyfile
        self.content_type, self.grpc = content_type, grpc
        self.stop_ev = threading.Event()
        self.sent = 0
        self.resets = 0
        self.responses = {}
        self.error = None

    def run(self):
        ctx = client_context(("h2",))
        if self.certfile:
            ctx.load_cert_chain(self.certfile, self.keyfile)
        try:
            raw = socket.create_connection(self.addr, timeout=30, source_address=(self.source, 0))
            t = ctx.wrap_socket(raw)
        except (OSError, ssl.SSLError) as e:
            self.error = e
            return
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        conn.initiate_connection()
        conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1 << 20})
        left = {}
        for i in range(self.streams):
            sid = conn.get_next_available_stream_id()
            hdrs = [(":method", "POST"), (":path", self.path), (":scheme", "https"),
                    (":authority", "localhost"), ("content-type", self.content_type)]
            if self.grpc:
                hdrs.append(("te", "trailers"))
            else:
                hdrs.append(("content-length", str(self.size)))
            conn.send_headers(sid, hdrs)
            left[sid] = self.size - 1
        end = time.time() + self.duration
        chunk = b"\0" * 16384
        if self.grpc:
            # a gRPC frame header announcing a message of size - 5 bytes
            first = b"\0" + (self.size - 5).to_bytes(4, "big")
        t.settimeout(0.2)
        try:
            t.sendall(conn.data_to_send())
            while not self.stop_ev.is_set() and time.time() < end:
                progressed = False
                for sid in list(left):
                    if left[sid] <= 0:
                        continue
                    win = min(conn.local_flow_control_window(sid), conn.max_outbound_frame_size)
                    if win <= 0:
                        continue
                    n = min(win, left[sid], len(chunk))
                    data = chunk[:n]
                    if self.grpc and left[sid] == self.size - 1:
                        data = (first + chunk)[:n]
                    try:
                        conn.send_data(sid, data)
                    except Exception:  # stream reset or closed
                        left[sid] = 0
                        continue
                    left[sid] -= n
                    self.sent += n
                    progressed = True
                out = conn.data_to_send()
                if out:
                    t.sendall(out)
                try:
                    data = t.recv(65536)
                    if not data:
                        break
                    for ev in conn.receive_data(data):
                        name = type(ev).__name__
                        if name == "StreamReset":
                            self.resets += 1
                            left.pop(ev.stream_id, None)
                        elif name == "ResponseReceived":
                            self.responses[ev.stream_id] = dict(ev.headers)
                        elif name == "TrailersReceived":
                            self.responses.setdefault(ev.stream_id, {}).update(dict(ev.headers))
                        elif name == "DataReceived":
                            conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                    out = conn.data_to_send()
                    if out:
                        t.sendall(out)
                except (socket.timeout, ssl.SSLWantReadError):
                    if not progressed:
                        time.sleep(0.01)
        except (OSError, ssl.SSLError) as e:
            self.error = e
        finally:
            t.close()

    def stop(self):
        self.stop_ev.set()
        self.join(timeout=60)


def rss_kib(pid):
    """(VmRSS, VmHWM) of a process in KiB."""
    vals = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM"):
                vals[k] = int(v.split()[0])
    return vals.get("VmRSS", 0), vals.get("VmHWM", 0)
