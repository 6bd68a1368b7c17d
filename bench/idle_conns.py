#!/usr/bin/env python3
"""Open N mutually authenticated TLS connections to a gateway and hold them idle.

Each connection completes the TLS handshake with the client certificate, sends one
HTTP/1.1 keep-alive request and reads the whole response (so the server has verified the
certificate and served the connection), then stays open doing nothing. Connections are
opened in steps (`--steps 2000,6000,18000`: totals, each step adds connections up to its
total; `-n N` is one step): when a step's connections are up the script prints one JSON
line (`{"phase": "open", "step": N, ...}`) and waits for SIGUSR1 (or --hold seconds)
before the next step. After the last step and its signal it counts how many connections
the server still holds open, prints `{"phase": "done", ...}`, closes everything and exits.

Used by bench/run.sh to measure a server's (cmg gateway's, nginx's) memory per idle
client connection as the slope between the steps.
"""

import argparse
import asyncio
import collections
import json
import signal
import ssl
import sys
import time


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1", help="address to dial")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--sni", required=True, help="server name (SNI, certificate name, Host)")
    p.add_argument("--cacert", required=True)
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--path", required=True, help="path of the one request sent per connection")
    p.add_argument("-n", "--connections", type=int, default=10000)
    p.add_argument("--steps", help="comma-separated connection totals (overrides -n)")
    p.add_argument("--parallel", type=int, default=128, help="handshakes in flight at once")
    p.add_argument("--timeout", type=float, default=20.0, help="per-connection setup timeout (s)")
    p.add_argument("--hold", type=float, default=60.0, help="longest wait for SIGUSR1 (s)")
    return p.parse_args()


async def open_one(args, ctx, request, sem, conns, errors):
    async with sem:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(args.host, args.port, ssl=ctx, server_hostname=args.sni),
                args.timeout,
            )
        except Exception as e:  # noqa: BLE001 - every failure is counted by kind
            errors[f"connect: {type(e).__name__}: {e}"[:120]] += 1
            return
        try:
            writer.write(request)
            await writer.drain()
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), args.timeout)
            status_line, *header_lines = head.decode("latin-1").split("\r\n")
            status = int(status_line.split(" ", 2)[1])
            length = 0
            for line in header_lines:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip())
            await asyncio.wait_for(reader.readexactly(length), args.timeout)
            if status != 200:
                errors[f"status {status}"] += 1
                writer.close()
                return
        except Exception as e:  # noqa: BLE001
            errors[f"request: {type(e).__name__}: {e}"[:120]] += 1
            writer.close()
            return
        conns.append((reader, writer))


async def main():
    args = parse_args()
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=args.cacert)
    ctx.load_cert_chain(args.cert, args.key)
    ctx.set_alpn_protocols(["http/1.1"])
    request = (
        f"GET {args.path} HTTP/1.1\r\nHost: {args.sni}\r\nUser-Agent: cmg-bench-idle\r\n\r\n"
    ).encode()

    steps = [int(x) for x in args.steps.split(",")] if args.steps else [args.connections]
    conns = []
    errors = collections.Counter()
    sem = asyncio.Semaphore(args.parallel)
    release = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, release.set)
    for total in steps:
        started = time.monotonic()
        errors.clear()
        await asyncio.gather(
            *(
                open_one(args, ctx, request, sem, conns, errors)
                for _ in range(max(total - len(conns), 0))
            )
        )
        print(
            json.dumps(
                {
                    "phase": "open",
                    "step": total,
                    "open": len(conns),
                    "failed": sum(errors.values()),
                    "errors": dict(errors.most_common(5)),
                    "seconds": round(time.monotonic() - started, 2),
                }
            ),
            flush=True,
        )
        try:
            await asyncio.wait_for(release.wait(), args.hold)
        except asyncio.TimeoutError:
            pass
        release.clear()
    # A connection the server closed has seen EOF by now (the event loop read it).
    await asyncio.sleep(0.2)
    still_open = sum(1 for reader, _ in conns if not reader.at_eof())
    print(json.dumps({"phase": "done", "still_open": still_open}), flush=True)
    for _, writer in conns:
        writer.transport.abort()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(130)
