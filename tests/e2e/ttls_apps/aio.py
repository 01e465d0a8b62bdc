"""TTLS event-loop test program: an asyncio echo server on 127.0.0.1 and ::1, and a client
that opens N connections at once (non-blocking connect through TTLS), alternating IPv4/IPv6.

    aio.py server PORT
    aio.py client PORT N      prints "aio ok N"
"""
import asyncio
import socket
import sys


async def handle(reader, writer):
    try:
        line = await reader.readline()
        writer.write(b"echo " + line)
        await writer.drain()
    finally:
        writer.close()


async def server(port):
    srv = await asyncio.start_server(handle, host=["127.0.0.1", "::1"], port=port)
    async with srv:
        await srv.serve_forever()


async def one(port, i):
    host = "127.0.0.1" if i % 2 == 0 else "::1"
    reader, writer = await asyncio.open_connection(host, port)
    sock = writer.get_extra_info("socket")
    assert sock.family == (socket.AF_INET if i % 2 == 0 else socket.AF_INET6)
    peer = writer.get_extra_info("peername")
    assert peer[1] == port, peer
    writer.write(b"hello %d\n" % i)
    await writer.drain()
    line = await reader.readline()
    assert line == b"echo hello %d\n" % i, line
    assert await reader.read() == b""
    writer.close()
    await writer.wait_closed()


async def client(port, n):
    await asyncio.gather(*(one(port, i) for i in range(n)))
    print("aio ok", n, flush=True)


if __name__ == "__main__":
    port = int(sys.argv[2])
    asyncio.run(server(port) if sys.argv[1] == "server" else client(port, int(sys.argv[3])))
