#!/usr/bin/env python3
"""Soak-and-chaos harness for wireloop's proxies (python3 stdlib only).

    python3 benches/chaos/chaos.py run --duration 600 --bin target/release/examples

starts, on 127.0.0.1 only, with ports picked free at start:

  backends (this file, `backend MODE PORT`, one process each)
    flap1, flap2   well-behaved HTTP/1.1 servers, SIGKILLed and restarted by the schedule
    good1, good2   well-behaved HTTP/1.1 servers, never touched (the tcp-proxy's upstreams)
    faults         a server whose misbehaviour is chosen by the request path: /reset (head
                   and 30 KB of a 100 KB body, then a TCP reset), /stall (head and 300 of
                   1000 body bytes, then silence), /slow (answers after 30 s), /noread
                   (answers a 4.5 MiB POST at once and never reads its body), /ok (behaves)
  proxies (the release examples)
    rp-main        reverse-proxy, plain and TLS listeners, group "main" = flap1 + flap2,
                   --max-connections (the cap the bursts hit)
    rp-faults      reverse-proxy, plain, group "faults" = the faults backend
    tcp-proxy      plain and TLS listeners -> good1 + good2, with a descriptor limit low
                   enough that the bursts hit EMFILE
  load (`load PLAN`): well-behaved clients on every route, each request checked against
                   what the schedule allows at that moment
  misbehave (`misbehave PLAN`): clients closing mid-response, slowloris, clients that
                   never read, bursts to the connection cap / past the descriptor limit

and then samples every proxy's RSS, descriptors and CPU from /proc, lets the storm end,
waits for the proxies' timeouts to close what is left, measures CPU while idle, prints the
report (also report.json in the output folder) and exits 1 if an invariant failed.

A route is (proxy, listener, upstream group). The reverse-proxy takes one group per
process today, so each group has its own proxy process (GROUPS below); when the proxy
takes a configuration with several groups and routes, the routes keep their names and
expectations and only the process table changes.
"""

import argparse
import asyncio
import json
import os
import random
import resource
import signal
import socket
import ssl
import struct
import subprocess
import sys
import time

HOST = "127.0.0.1"
BIG = 1 << 20  # response size for clients that close mid-response
HUGE = 16 << 20  # response size for clients that never read

# ---------------------------------------------------------------------------------------
# HTTP/1.1 backends
# ---------------------------------------------------------------------------------------


async def read_head(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    fields = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            fields[k.strip().lower()] = v.strip()
    return method, target, fields


def response(status, body, extra=""):
    reason = {200: "OK", 404: "Not Found"}.get(status, "X")
    return (
        f"HTTP/1.1 {status} {reason}\r\ncontent-length: {len(body)}\r\n{extra}\r\n"
    ).encode() + body


async def serve_conn(mode, reader, writer):
    sock = writer.get_extra_info("socket")
    try:
        while True:
            try:
                method, target, fields = await read_head(reader)
            except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
                return
            path = target.split("?")[0]
            n = int(fields.get("content-length", "0") or 0)
            if path == "/noread" and mode == "faults":
                # Answer at once, never read the body; the socket stays open (closed by
                # the proxy, or by us after 60 s).
                writer.write(response(200, b"early\n"))
                await writer.drain()
                await asyncio.sleep(60)
                return
            if n:
                await reader.readexactly(n)
            if mode == "faults" and path == "/reset":
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\n" + b"r" * 30000)
                await writer.drain()
                await asyncio.sleep(0.05)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                writer.transport.abort()
                return
            if mode == "faults" and path == "/stall":
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n" + b"s" * 300)
                await writer.drain()
                # Silent until the proxy gives up and closes.
                while await reader.read(65536):
                    pass
                return
            if mode == "faults" and path == "/slow":
                await asyncio.sleep(30)
                writer.write(response(200, b"slow\n"))
                await writer.drain()
                continue
            if path.startswith("/size/"):
                size = int(path[6:])
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % size)
                chunk = b"z" * 65536
                while size > 0:
                    writer.write(chunk[: min(size, len(chunk))])
                    size -= len(chunk)
                    await writer.drain()
                continue
            body = b"ok %s %d\n" % (path.encode(), n)
            writer.write(response(200, body))
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.transport.abort()


async def backend_main(mode, port):
    def make_sock():
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if mode == "faults":
            # Small buffers, inherited by accepted sockets: /noread stalls its sender soon.
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.bind((HOST, port))
        s.listen(1024)
        return s

    server = await asyncio.start_server(
        lambda r, w: serve_conn(mode, r, w), sock=make_sock(), limit=1 << 16
    )
    print(f"backend {mode} listening on {HOST}:{port}", flush=True)
    async with server:
        await server.serve_forever()


# ---------------------------------------------------------------------------------------
# HTTP client pieces (load and misbehave)
# ---------------------------------------------------------------------------------------


class Cut(Exception):
    """The connection ended inside a response (after its head)."""


class NoResponse(Exception):
    """The connection ended (or failed) before any byte of the response."""


async def read_response(reader, method="GET"):
    """Returns (status, body length); raises NoResponse or Cut."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as e:
        if e.partial:
            raise Cut("inside the head") from None
        raise NoResponse("eof") from None
    except (ConnectionError, ssl.SSLError, OSError) as e:
        raise NoResponse(type(e).__name__) from None
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    fields = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            fields[k.strip().lower()] = v.strip().lower()
    got = 0
    try:
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            pass
        elif "chunked" in fields.get("transfer-encoding", ""):
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                if size == 0:
                    await reader.readuntil(b"\r\n")  # no trailers expected
                    break
                await reader.readexactly(size + 2)
                got += size
        elif "content-length" in fields:
            n = int(fields["content-length"])
            while got < n:
                b = await reader.read(min(65536, n - got))
                if not b:
                    raise Cut(f"{got} of {n} body bytes")
                got += len(b)
        else:
            while True:
                b = await reader.read(65536)
                if not b:
                    break
                got += len(b)
    except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError, OSError) as e:
        raise Cut(f"{type(e).__name__} after {got} body bytes") from None
    return status, got, fields.get("connection", "") == "close"


def client_ssl(cafile):
    ctx = ssl.create_default_context(cafile=cafile)
    return ctx


async def connect(port, tls, timeout=5.0):
    ssl_ctx = tls and client_ssl(tls)
    return await asyncio.wait_for(
        asyncio.open_connection(
            HOST, port, ssl=ssl_ctx or None, server_hostname="localhost" if ssl_ctx else None,
            limit=1 << 17,
        ),
        timeout,
    )


def close_writer(w):
    try:
        w.transport.abort()
    except Exception:
        pass


# ---------------------------------------------------------------------------------------
# The plan: routes, what each request may get, and the fault schedule
# ---------------------------------------------------------------------------------------


def make_schedule(t0, duration):
    """Fault windows in absolute time. A cycle repeats every `cycle` seconds: flap1
    killed, flap2 killed, both killed, then the bursts."""
    cycle = 60.0 if duration >= 240 else duration / 2.0
    down = min(6.0, cycle / 8)
    ev = []
    c = 0.0
    while c + cycle <= duration + 0.01:
        b = t0 + c
        ev.append({"kind": "kill", "targets": ["flap1"], "at": b + 0.10 * cycle, "until": b + 0.10 * cycle + down})
        ev.append({"kind": "kill", "targets": ["flap2"], "at": b + 0.35 * cycle, "until": b + 0.35 * cycle + down})
        ev.append({"kind": "kill", "targets": ["flap1", "flap2"], "at": b + 0.60 * cycle, "until": b + 0.60 * cycle + down})
        ev.append({"kind": "burst", "targets": ["rp-main"], "at": b + 0.80 * cycle, "until": b + 0.80 * cycle + 3.0})
        ev.append({"kind": "burst", "targets": ["tcp-proxy"], "at": b + 0.85 * cycle, "until": b + 0.85 * cycle + 3.0})
        c += cycle
    return ev


# A route: which proxy port a client uses, TLS or not, which group is behind it, and the
# paths it asks for with the outcomes each may have.
def routes(ports, certs):
    return [
        {"name": "main-plain", "port": ports["rp-main"], "tls": None, "proxy": "rp-main", "group": "main", "clients": 6, "reconnect": 50},
        {"name": "main-tls", "port": ports["rp-main-tls"], "tls": certs["rp-main"], "proxy": "rp-main", "group": "main", "clients": 4, "reconnect": 50},
        {"name": "l4-plain", "port": ports["tcp-proxy"], "tls": None, "proxy": "tcp-proxy", "group": "l4", "clients": 4, "reconnect": 20},
        {"name": "l4-tls", "port": ports["tcp-proxy-tls"], "tls": certs["tcp-proxy"], "proxy": "tcp-proxy", "group": "l4", "clients": 2, "reconnect": 20},
        {"name": "faults-ok", "port": ports["rp-faults"], "tls": None, "proxy": "rp-faults", "group": "faults", "clients": 2, "reconnect": 50},
        {"name": "faults", "port": ports["rp-faults"], "tls": None, "proxy": "rp-faults", "group": "faults", "clients": 4, "reconnect": 1},
    ]


# What a request on the fault route may get, by path: fixed by the faulty upstream's
# behaviour, whatever the time.
FAULT_PATHS = {
    "/reset": {"cut", "502"},  # head and part of the body passed on, then cut (or 502 if
    # the reset overtook the head)
    "/stall": {"cut"},  # cut after the proxy's --read-timeout
    "/slow": {"504"},  # the proxy's --upstream-timeout
    "/noread": {"2xx"},  # the early answer reaches the client whole
}


# How long a request on a fault path may take, in seconds: /stall is cut by the
# --read-timeout (3 s) after its last body bytes, /slow gets its 504 at --upstream-timeout
# (5 s); /reset and /noread are quick.
FAULT_TIMES = {"/reset": (0.0, 2.0), "/stall": (3.0, 5.0), "/slow": (5.0, 7.0), "/noread": (0.0, 2.0)}


def allowed(plan, route, path, start, end):
    """The outcomes a well-behaved request may have, each with the reason the schedule
    gives: always 2xx except on the fault paths; 502 while every peer of its group is
    down, or for a request in flight when one was killed; a refused connection while a
    burst holds its proxy's connections."""
    if route["name"] == "faults":
        return {o: "upstream " + path[1:] for o in FAULT_PATHS[path]}
    ok = {"2xx": ""}
    for e in plan["schedule"]:
        if e["kind"] == "kill" and route["group"] == "main":
            both = len(e["targets"]) == 2
            if both and start <= e["until"] + 2.5 and end >= e["at"] - 0.2:
                ok.setdefault("502", "every peer down")
                ok.setdefault("503", "every peer down")
            elif not both and start <= e["at"] + 0.5 and end >= e["at"] - 0.2:
                # In flight at the kill: the peer died under it.
                ok.setdefault("502", "in flight at a kill")
        if e["kind"] == "burst" and route["proxy"] in e["targets"]:
            if start <= e["until"] + 2.0 and end >= e["at"] - 0.2:
                ok.setdefault("refused", "burst")
    return ok


# ---------------------------------------------------------------------------------------
# Well-behaved load
# ---------------------------------------------------------------------------------------


async def one_request(route, path, reader, writer):
    if path == "/noread":
        # More than the kernel holds between proxy and upstream (a 4 MiB send buffer at
        # most, a 4 KiB receive buffer), less than that and the proxy's 1 MiB output
        # high-water mark: the proxy may read it all, and cannot have sent it all when
        # the early answer comes, so it must not pool the connection. A body the kernel
        # took whole is out of the proxy's sight (RELIABILITY.md).
        body = b"b" * (4608 << 10)
        writer.write(
            b"POST /noread HTTP/1.1\r\nhost: chaos\r\ncontent-length: %d\r\n\r\n" % len(body)
        )

        async def send():
            try:
                for i in range(0, len(body), 16384):
                    writer.write(body[i : i + 16384])
                    await writer.drain()
            except Exception:
                pass

        sender = asyncio.ensure_future(send())
        try:
            return await read_response(reader)
        finally:
            sender.cancel()
    writer.write(b"GET %s HTTP/1.1\r\nhost: chaos\r\n\r\n" % path.encode())
    return await read_response(reader)


async def behaved_client(plan, route, idx, stats, stop_at):
    rng = random.Random(idx * 7919 + hash(route["name"]) % 1000)
    reader = writer = None
    used = 0
    while time.time() < stop_at:
        if route["name"] == "faults":
            path = rng.choice(list(FAULT_PATHS))
            timeout = 20.0
        else:
            path = rng.choice(["/ok", "/ok", "/ok", "/size/4096", "/size/65536"])
            timeout = 10.0
        start = time.time()
        outcome = None
        detail = ""
        fresh = False
        try:
            if writer is None:
                fresh = True
                try:
                    reader, writer = await connect(route["port"], route["tls"])
                except (OSError, asyncio.TimeoutError, ssl.SSLError) as e:
                    raise NoResponse(f"connect: {type(e).__name__} {e}") from None
                used = 0
            status, got, close = await asyncio.wait_for(one_request(route, path, reader, writer), timeout)
            used += 1
            if 200 <= status < 300:
                outcome = "2xx"
            else:
                outcome = str(status)
            if path.startswith("/size/") and outcome == "2xx" and got != int(path[6:]):
                outcome, detail = "short", f"{got} of {path[6:]}"
            if close or used >= route["reconnect"] or route["name"] == "faults":
                close_writer(writer)
                writer = None
        except NoResponse as e:
            outcome = "refused" if fresh else "noresponse"
            detail = str(e)
            close_writer(writer) if writer else None
            writer = None
        except Cut as e:
            outcome, detail = "cut", str(e)
            close_writer(writer)
            writer = None
        except asyncio.TimeoutError:
            outcome, detail = "timeout", f"{timeout}s"
            close_writer(writer) if writer else None
            writer = None
        except (ConnectionError, OSError, ssl.SSLError) as e:
            outcome, detail = "error", f"{type(e).__name__} {e}"
            close_writer(writer) if writer else None
            writer = None
        end = time.time()
        ok = allowed(plan, route, path, start, end)
        key = route["name"]
        s = stats.setdefault(key, {"sent": 0, "outcomes": {}, "unexpected": 0, "examples": []})
        s["sent"] += 1
        s["outcomes"][outcome] = s["outcomes"].get(outcome, 0) + 1
        if outcome not in ok:
            s["unexpected"] += 1
            if len(s["examples"]) < 10:
                s["examples"].append(
                    {"t": round(start - plan["t0"], 2), "dur": round(end - start, 3), "path": path, "outcome": outcome, "detail": detail, "allowed": sorted(ok)}
                )
        else:
            if ok[outcome]:
                why = s.setdefault("expected_by", {})
                k = f"{outcome} ({ok[outcome]})"
                why[k] = why.get(k, 0) + 1
            if route["name"] == "faults":
                bp = s.setdefault("by_path", {}).setdefault(path, {"n": 0, "min_s": 1e9, "max_s": 0.0})
                bp["n"] += 1
                bp["min_s"] = round(min(bp["min_s"], end - start), 2)
                bp["max_s"] = round(max(bp["max_s"], end - start), 2)
        await asyncio.sleep(0.5 if route["name"] == "faults" else 0.02)
    if writer is not None:
        close_writer(writer)


async def load_main(plan_file):
    plan = json.load(open(plan_file))
    stats = {}
    while time.time() < plan["t0"]:
        await asyncio.sleep(0.05)
    tasks = []
    for r in plan["routes"]:
        for i in range(r["clients"]):
            tasks.append(behaved_client(plan, r, i, stats, plan["t_end"]))
    await asyncio.gather(*tasks)
    json.dump(stats, open(plan["out"] + "/load.json", "w"), indent=1)


# ---------------------------------------------------------------------------------------
# Misbehaving clients
# ---------------------------------------------------------------------------------------


def tcp_state(sock):
    """The kernel's TCP state of `sock` (1 established, 7 closed, 8 close-wait)."""
    try:
        return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0]
    except OSError:
        return 7


async def mid_close(plan, stats, port, tls, stop_at, name):
    """GET a 1 MiB body, read 16 KB of it, close (every other time with a reset)."""
    n = 0
    while time.time() < stop_at:
        try:
            r, w = await connect(port, tls)
            w.write(b"GET /size/%d HTTP/1.1\r\nhost: chaos\r\n\r\n" % BIG)
            got = 0
            while got < 16384:
                b = await asyncio.wait_for(r.read(4096), 10)
                if not b:
                    break
                got += len(b)
            if n % 2:
                s = w.get_extra_info("socket")
                if s is not None:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            close_writer(w)
            stats[name] = stats.get(name, 0) + 1
        except Exception:
            k = name + " (not completed: refused, 502 or no body)"
            stats[k] = stats.get(k, 0) + 1
        n += 1
        await asyncio.sleep(0.2)


async def connect_or_pause(port, tls):
    """A connection, or None after a second's pause (during a burst, say)."""
    try:
        return await connect(port, tls)
    except Exception:
        await asyncio.sleep(1)
        return None


def ended(w, closed_by_proxy, since, lifetimes, stats, name):
    """Closes our side; a connection the proxy closed counts, with how long it lived."""
    close_writer(w)
    if closed_by_proxy:
        lived = time.time() - since
        lifetimes.append(lived)
        # Within a second: refused at the connection cap (a burst), not a timeout.
        key = name + (" (closed at once: refused during a burst)" if lived < 1.0 else " (closed by a timeout)")
        stats[key] = stats.get(key, 0) + 1


async def slowloris(plan, stats, port, tls, stop_at, name, lifetimes):
    """Trickle a request head one byte a second until the proxy closes the connection."""
    head = b"GET /ok HTTP/1.1\r\nhost: chaos\r\nx-slow: " + b"a" * 200
    while time.time() < stop_at:
        t = time.time()
        rw = await connect_or_pause(port, tls)
        if rw is None:
            continue
        r, w = rw
        closed = False
        for i in range(len(head)):
            if time.time() > stop_at:
                break
            try:
                w.write(head[i : i + 1])
                await w.drain()
                b = await asyncio.wait_for(r.read(4096), 1.0)
                if not b:
                    closed = True
                    break
            except asyncio.TimeoutError:
                continue
            except Exception:
                closed = True
                break
            # A response (408) came: read on until the close.
            try:
                while await asyncio.wait_for(r.read(4096), 5):
                    pass
            except Exception:
                pass
            closed = True
            break
        ended(w, closed, t, lifetimes, stats, name)


async def never_read(plan, stats, port, tls, stop_at, name, lifetimes):
    """GET 16 MiB and never read; watch the socket's TCP state until the proxy gives up."""
    while time.time() < stop_at:
        t = time.time()
        rw = await connect_or_pause(port, tls)
        if rw is None:
            continue
        w = rw[1]
        sock = w.get_extra_info("socket")
        w.transport.pause_reading()
        w.write(b"GET /size/%d HTTP/1.1\r\nhost: chaos\r\n\r\n" % HUGE)
        closed = False
        while time.time() < stop_at:
            await asyncio.sleep(0.5)
            if tcp_state(sock) != 1:
                closed = True
                break
        ended(w, closed, t, lifetimes, stats, name)


def burst_sockets(port, n):
    socks = []
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        try:
            s.connect_ex((HOST, port))
        except OSError:
            pass
        socks.append(s)
    return socks


async def bursts(plan, stats):
    for e in sorted(plan["schedule"], key=lambda e: e["at"]):
        if e["kind"] != "burst":
            continue
        await asyncio.sleep(max(0.0, e["at"] - time.time()))
        for target in e["targets"]:
            port = plan["ports"][target]
            socks = burst_sockets(port, plan["burst"])
            await asyncio.sleep(0.3)
            # Each sends a request: a connection the proxy accepted works for it.
            for s in socks:
                try:
                    s.send(b"GET /ok HTTP/1.1\r\nhost: chaos\r\n\r\n")
                except OSError:
                    pass
            await asyncio.sleep(max(0.0, e["until"] - time.time()))
            for s in socks:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                s.close()
            stats["burst " + target] = stats.get("burst " + target, 0) + len(socks)


async def misbehave_main(plan_file):
    plan = json.load(open(plan_file))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    stats = {}
    slow_life, noread_life = [], []
    while time.time() < plan["t0"]:
        await asyncio.sleep(0.05)
    stop = plan["t_end"]
    p, c = plan["ports"], plan["certs"]
    tasks = [bursts(plan, stats)]
    for name, port, tls in [
        ("close mid-response rp-main", p["rp-main"], None),
        ("close mid-response rp-main tls", p["rp-main-tls"], c["rp-main"]),
        ("close mid-response tcp-proxy", p["tcp-proxy"], None),
    ]:
        tasks.append(mid_close(plan, stats, port, tls, stop, name))
    for i in range(8):
        tasks.append(slowloris(plan, stats, p["rp-main"], None, stop, "slowloris rp-main", slow_life))
    for i in range(4):
        tasks.append(slowloris(plan, stats, p["rp-main-tls"], c["rp-main"], stop, "slowloris rp-main tls", slow_life))
    for i in range(2):
        tasks.append(never_read(plan, stats, p["rp-main"], None, stop, "never read rp-main", noread_life))
        tasks.append(never_read(plan, stats, p["tcp-proxy"], None, stop, "never read tcp-proxy", noread_life))
    await asyncio.gather(*tasks)
    out = {
        "counts": stats,
        "slowloris_lifetime_max": max(slow_life, default=0),
        "never_read_lifetime_max": max(noread_life, default=0),
    }
    json.dump(out, open(plan["out"] + "/misbehave.json", "w"), indent=1)


# ---------------------------------------------------------------------------------------
# The orchestrator
# ---------------------------------------------------------------------------------------


def free_port():
    s = socket.socket()
    s.bind((HOST, 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Procs:
    """Every process started, stopped by its PID."""

    def __init__(self, out):
        self.out = out
        self.procs = {}

    def start(self, name, argv, nofile=None):
        log = open(f"{self.out}/{name}.log", "ab")

        def limit():
            if nofile:
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

        p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, preexec_fn=limit)
        self.procs[name] = p
        return p

    def kill(self, name, sig=signal.SIGKILL):
        p = self.procs.get(name)
        if p is not None and p.poll() is None:
            os.kill(p.pid, sig)
            p.wait()

    def stop_all(self):
        for p in self.procs.values():
            if p.poll() is None:
                try:
                    os.kill(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.time() + 5
        for p in self.procs.values():
            try:
                p.wait(max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                os.kill(p.pid, signal.SIGKILL)
                p.wait()


def wait_port(port, timeout=20.0):
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection((HOST, port), 0.5).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def proc_sample(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            rss = next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
        fds = len(os.listdir(f"/proc/{pid}/fd"))
        with open(f"/proc/{pid}/stat") as f:
            parts = f.read().rsplit(")", 1)[1].split()
        cpu = (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")
        return {"rss_kib": rss, "fds": fds, "cpu_s": cpu}
    except (OSError, StopIteration):
        return None


def run(args):
    out = os.path.abspath(args.out or f"target/chaos/{time.strftime('%Y%m%d-%H%M%S')}")
    os.makedirs(out, exist_ok=True)
    bins = os.path.abspath(args.bin)
    me = os.path.abspath(__file__)
    procs = Procs(out)

    def on_signal(sig, _frame):
        procs.stop_all()
        sys.exit(128 + sig)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        return orchestrate(args, out, bins, me, procs)
    finally:
        procs.stop_all()


PROXIES = ["rp-main", "rp-faults", "tcp-proxy"]


def orchestrate(args, out, bins, me, procs):
    names = ["flap1", "flap2", "good1", "good2", "faults", "rp-main", "rp-main-tls", "rp-faults", "tcp-proxy", "tcp-proxy-tls"]
    ports = {n: free_port() for n in names}
    backend_mode = {"flap1": "good", "flap2": "good", "good1": "good", "good2": "good", "faults": "faults"}

    def start_backend(name):
        procs.start(name, [sys.executable, me, "backend", backend_mode[name], str(ports[name])])

    for b in backend_mode:
        start_backend(b)
    for b in backend_mode:
        if not wait_port(ports[b]):
            raise SystemExit(f"backend {b} did not start")
    up = lambda n: f"http://{HOST}:{ports[n]}"
    # Short timeouts, so a run drains within seconds of the storm's end.
    common = ["--listen-host", HOST, "--no-access-log", "--connect-timeout", "2", "--upstream-timeout", "5",
              "--read-timeout", "3", "--send-timeout", "5", "--idle-timeout", "2", "--down-time", "2"]
    certs = {"rp-main": f"{out}/rp-main.pem", "tcp-proxy": f"{out}/tcp-proxy.pem"}
    procs.start("rp-main", [f"{bins}/reverse-proxy", "--port", str(ports["rp-main"]), "--tlsport", str(ports["rp-main-tls"]),
                            "--cert-out", certs["rp-main"], "--upstream", up("flap1"), "--upstream", up("flap2"),
                            "--max-connections", str(args.cap)] + common)
    procs.start("rp-faults", [f"{bins}/reverse-proxy", "--port", str(ports["rp-faults"]), "--tlsport", "0",
                              "--upstream", up("faults")] + common)
    procs.start("tcp-proxy", [f"{bins}/tcp-proxy", "--listen", f"{HOST}:{ports['tcp-proxy']}",
                              "--tls-listen", f"{HOST}:{ports['tcp-proxy-tls']}", "--cert-out", certs["tcp-proxy"],
                              "--upstream", f"{HOST}:{ports['good1']}", "--upstream", f"{HOST}:{ports['good2']}",
                              "--connect-timeout", "2", "--idle-timeout", "10", "--send-timeout", "5"],
                nofile=args.nofile)
    for n in ["rp-main", "rp-main-tls", "rp-faults", "tcp-proxy", "tcp-proxy-tls"]:
        if not wait_port(ports[n]):
            raise SystemExit(f"{n} did not start (see {out})")
    # The probes above were connections too: let them close.
    time.sleep(1.0)
    pids = {n: procs.procs[n].pid for n in PROXIES}
    start_sample = {n: proc_sample(pids[n]) for n in PROXIES}

    t0 = time.time() + 2.0
    t_end = t0 + args.duration
    plan = {
        "t0": t0, "t_end": t_end, "out": out, "ports": ports, "certs": certs, "burst": args.burst,
        "schedule": make_schedule(t0, args.duration),
    }
    plan["routes"] = routes(ports, certs)
    with open(f"{out}/plan.json", "w") as f:
        json.dump(plan, f, indent=1)
    print(f"chaos: {args.duration:.0f} s storm, output in {out}", flush=True)
    print("chaos: ports " + ", ".join(f"{k} {v}" for k, v in ports.items()), flush=True)
    procs.start("load", [sys.executable, me, "load", f"{out}/plan.json"])
    procs.start("misbehave", [sys.executable, me, "misbehave", f"{out}/plan.json"])

    # The schedule's kills and restarts, and a sample of every proxy each second.
    pending = []
    for e in plan["schedule"]:
        if e["kind"] == "kill":
            for t in e["targets"]:
                pending.append((e["at"], "kill", t))
                pending.append((e["until"], "restart", t))
    pending.sort()
    samples = []
    next_sample = time.time()
    while time.time() < t_end or pending:
        now = time.time()
        while pending and pending[0][0] <= now:
            _, what, target = pending.pop(0)
            if what == "kill":
                procs.kill(target)
            else:
                start_backend(target)
            print(f"chaos: t={now - t0:6.1f} {what} {target}", flush=True)
        if now >= next_sample:
            row = {"t": round(now - t0, 1)}
            for n in PROXIES:
                row[n] = proc_sample(pids[n])
            samples.append(row)
            next_sample += 1.0
            if int(row["t"]) % 30 == 0 and row["t"] >= 0:
                print("chaos: t=%6.1f " % row["t"] + "  ".join(
                    f"{n} rss {row[n]['rss_kib'] // 1024} MiB fds {row[n]['fds']}" for n in PROXIES if row[n]), flush=True)
        for n in PROXIES:
            if procs.procs[n].poll() is not None:
                raise SystemExit(f"chaos: {n} exited with {procs.procs[n].returncode} during the storm (see {out}/{n}.log)")
        time.sleep(0.05)
    for n in ["load", "misbehave"]:
        try:
            procs.procs[n].wait(60)
        except subprocess.TimeoutExpired:
            print(f"chaos: {n} did not finish; stopping it", flush=True)
            procs.kill(n)
    storm_end = time.time()

    # Drain: every client is gone; the proxies' timeouts close what remains.
    end_sample = {}
    drained_after = {}
    deadline = storm_end + args.drain
    while True:
        cur = {n: proc_sample(pids[n]) for n in PROXIES}
        for n in PROXIES:
            if n not in drained_after and cur[n]["fds"] <= start_sample[n]["fds"]:
                drained_after[n] = round(time.time() - storm_end, 1)
        if len(drained_after) == len(PROXIES) or time.time() > deadline:
            break
        time.sleep(0.5)
    time.sleep(1.0)
    idle0 = {n: proc_sample(pids[n]) for n in PROXIES}
    time.sleep(args.idle)
    idle1 = {n: proc_sample(pids[n]) for n in PROXIES}
    end_sample = idle1
    return report(args, out, plan, samples, start_sample, end_sample, drained_after, idle0, idle1)


def report(args, out, plan, samples, start, end, drained_after, idle0, idle1):
    load = json.load(open(f"{out}/load.json")) if os.path.exists(f"{out}/load.json") else {}
    mis = json.load(open(f"{out}/misbehave.json")) if os.path.exists(f"{out}/misbehave.json") else {}
    failures = []
    lines = []
    p = lines.append
    p(f"chaos report: {args.duration:.0f} s storm, {len(plan['schedule'])} scheduled faults "
      f"({sum(len(e['targets']) for e in plan['schedule'] if e['kind'] == 'kill')} upstream kills, "
      f"{sum(1 for e in plan['schedule'] if e['kind'] == 'burst')} bursts of {plan['burst']} connections)")
    p("")
    p("well-behaved requests (each outcome checked against the schedule):")
    p(f"  {'route':<11} {'sent':>7} {'2xx':>7} {'502':>5} {'503':>5} {'504':>5} {'cut':>5} {'refused':>7} {'other':>6} {'unexpected':>10}")
    tot = {"sent": 0, "2xx": 0, "502": 0, "503": 0, "504": 0, "cut": 0, "refused": 0, "other": 0, "unexpected": 0}
    for r in plan["routes"]:
        s = load.get(r["name"])
        if s is None:
            failures.append(f"route {r['name']}: no results")
            continue
        o = s["outcomes"]
        known = {k: o.get(k, 0) for k in ["2xx", "502", "503", "504", "cut", "refused"]}
        other = s["sent"] - sum(known.values())
        row = {"sent": s["sent"], **known, "other": other, "unexpected": s["unexpected"]}
        for k in tot:
            tot[k] += row[k]
        p(f"  {r['name']:<11} {row['sent']:>7} {row['2xx']:>7} {row['502']:>5} {row['503']:>5} {row['504']:>5} "
          f"{row['cut']:>5} {row['refused']:>7} {row['other']:>6} {row['unexpected']:>10}")
        if s["unexpected"]:
            failures.append(f"route {r['name']}: {s['unexpected']} requests failed in a way the schedule does not allow")
            for ex in s["examples"]:
                p(f"      unexpected: {ex}")
        for k, v in sorted(s.get("expected_by", {}).items()):
            p(f"      {k}: {v}")
        for path, v in sorted(s.get("by_path", {}).items()):
            p(f"      {path}: {v['n']} answered as its upstream's fault requires, in {v['min_s']}-{v['max_s']} s")
            lo, hi = FAULT_TIMES[path]
            if v["n"] and (v["min_s"] < lo or v["max_s"] > hi):
                failures.append(f"{path}: answered in {v['min_s']}-{v['max_s']} s, expected within {lo}-{hi} s")
        if s["sent"] == 0:
            failures.append(f"route {r['name']}: sent nothing")
    p(f"  {'total':<11} {tot['sent']:>7} {tot['2xx']:>7} {tot['502']:>5} {tot['503']:>5} {tot['504']:>5} "
      f"{tot['cut']:>5} {tot['refused']:>7} {tot['other']:>6} {tot['unexpected']:>10}")
    p("  (502/503: a group with every peer killed, or a request in flight at a kill; 504: /slow;")
    p("   cut: /reset and /stall, whose upstream fails after the head; refused: a new connection")
    p("   during a burst at its proxy's cap or descriptor limit; other outcomes are failures)")
    p("")
    p("misbehaving clients:")
    for k, v in sorted(mis.get("counts", {}).items()):
        p(f"  {k}: {v}")
    sl = mis.get("slowloris_lifetime_max", 0)
    nr = mis.get("never_read_lifetime_max", 0)
    p(f"  longest slowloris connection: {sl:.1f} s (header timeout 10 s)")
    p(f"  longest never-reading connection: {nr:.1f} s (send timeout 5 s)")
    if sl > 16:
        failures.append(f"a slowloris connection lived {sl:.1f} s")
    if nr > 12:
        failures.append(f"a never-reading client was kept {nr:.1f} s")
    p("")
    p("proxies:")
    p(f"  {'process':<10} {'RSS start':>9} {'peak':>6} {'1st half':>8} {'2nd half':>8} {'end':>6} (MiB)  {'fds start':>9} {'peak':>5} {'end':>4} {'drained':>8}  {'idle CPU':>9}")
    storm = [s for s in samples if 0 <= s["t"] <= args.duration]
    half = args.duration / 2
    for n in PROXIES:
        rss = [s[n]["rss_kib"] for s in storm if s.get(n)]
        fds = [s[n]["fds"] for s in storm if s.get(n)]
        h1 = max((s[n]["rss_kib"] for s in storm if s.get(n) and s["t"] < half), default=0)
        h2 = max((s[n]["rss_kib"] for s in storm if s.get(n) and s["t"] >= half), default=0)
        idle_cpu = (idle1[n]["cpu_s"] - idle0[n]["cpu_s"]) / args.idle
        mib = lambda k: f"{k / 1024:.1f}"
        d = drained_after.get(n)
        p(f"  {n:<10} {mib(start[n]['rss_kib']):>9} {mib(max(rss, default=0)):>6} {mib(h1):>8} {mib(h2):>8} {mib(end[n]['rss_kib']):>6}        "
          f"{start[n]['fds']:>9} {max(fds, default=0):>5} {end[n]['fds']:>4} {(str(d) + ' s') if d is not None else 'never':>8}  {idle_cpu * 100:>8.2f}%")
        if end[n]["fds"] != start[n]["fds"]:
            failures.append(f"{n}: {end[n]['fds']} descriptors open at the end, {start[n]['fds']} at the start")
        if h2 > h1 * 1.5 + 8192:
            failures.append(f"{n}: RSS grew from {mib(h1)} MiB (first half) to {mib(h2)} MiB (second half)")
        if idle_cpu > args.idle_cpu / 100:
            failures.append(f"{n}: {idle_cpu * 100:.2f}% CPU while idle (limit {args.idle_cpu}%)")
    p("  RSS over the storm (MiB, one value a minute or a tenth of the run):")
    step = max(1, int(min(60, args.duration / 10)))
    marks = [next((x for x in storm if x["t"] >= k), None) for k in range(0, int(args.duration) + 1, step)]
    for n in PROXIES:
        p(f"    {n:<10} " + " ".join(f"{x[n]['rss_kib'] / 1024:.1f}" for x in marks if x and x.get(n)))
    p("  (RSS: peak of each half of the storm must stay within 1.5x + 8 MiB; fds: equal at")
    p(f"   start and end, after the drain; idle CPU over {args.idle:.0f} s after the drain, limit {args.idle_cpu}%)")
    emfile = sum(open(f"{out}/{n}.log", errors="replace").read().count("accept failed") for n in PROXIES)
    refused = sum(open(f"{out}/{n}.log", errors="replace").read().count("connections open, the limit is") for n in PROXIES)
    p(f"  log lines: 'accept failed' (EMFILE) {emfile}, 'refusing new ones' (cap) {refused}")
    if args.burst and emfile == 0:
        failures.append("the bursts never hit EMFILE (raise --burst or lower --nofile)")
    if args.burst and refused == 0:
        failures.append("the bursts never hit the connection cap")
    panics = [n for n in PROXIES if "panicked" in open(f"{out}/{n}.log", errors="replace").read()]
    for n in panics:
        failures.append(f"{n} panicked (see its log)")
    p("")
    if failures:
        p("FAILED:")
        for f in failures:
            p("  - " + f)
    else:
        p("PASSED: every invariant held")
    text = "\n".join(lines)
    print(text, flush=True)
    with open(f"{out}/report.txt", "w") as f:
        f.write(text + "\n")
    with open(f"{out}/report.json", "w") as f:
        json.dump({"load": load, "misbehave": mis, "samples": samples, "start": start, "end": end,
                   "drained_after": drained_after, "failures": failures}, f, indent=1)
    return 1 if failures else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd")
    r = sub.add_parser("run", help="the whole harness (default)")
    r.add_argument("--duration", type=float, default=600.0, help="seconds of storm (default 600)")
    r.add_argument("--bin", default="target/release/examples", help="folder of the release examples")
    r.add_argument("--out", help="output folder (default target/chaos/DATE)")
    r.add_argument("--cap", type=int, default=200, help="rp-main's --max-connections (default 200)")
    r.add_argument("--nofile", type=int, default=160, help="tcp-proxy's descriptor limit (default 160)")
    r.add_argument("--burst", type=int, default=400, help="connections per burst (default 400)")
    r.add_argument("--drain", type=float, default=30.0, help="longest wait for descriptors to return (default 30 s)")
    r.add_argument("--idle", type=float, default=10.0, help="seconds of idle CPU measurement (default 10)")
    r.add_argument("--idle-cpu", type=float, default=1.0, help="idle CPU limit in percent of a core (default 1)")
    b = sub.add_parser("backend")
    b.add_argument("mode", choices=["good", "faults"])
    b.add_argument("port", type=int)
    ld = sub.add_parser("load")
    ld.add_argument("plan")
    m = sub.add_parser("misbehave")
    m.add_argument("plan")
    args = ap.parse_args(sys.argv[1:] if len(sys.argv) > 1 and sys.argv[1] in ("run", "backend", "load", "misbehave", "-h", "--help") else ["run"] + sys.argv[1:])
    if args.cmd == "backend":
        asyncio.run(backend_main(args.mode, args.port))
    elif args.cmd == "load":
        asyncio.run(load_main(args.plan))
    elif args.cmd == "misbehave":
        asyncio.run(misbehave_main(args.plan))
    else:
        sys.exit(run(args))


if __name__ == "__main__":
    main()
