#!/usr/bin/env python3
"""HTTP/2 over TLS, jrps beside nginx: what browsers use (ALPN picks h2).

h2load (Debian's nghttp2-client) with C connections of M concurrent streams
each, D seconds, against jrps (TLS) and nginx (TLS, `http2`, keep-alive to
the same backend), rounds interleaved; per target the median req/s and the
proxy's CPU time per request (user+system of its processes, from /proc);
before that, on freshly started proxies, the memory (PSS) each of N idle
HTTP/2 connections holds after one request.
The configs are bench.py's (`write_configs`), so both proxies are set up as
in the HTTP/1.1 table.

Run through `scripts/bench --h2` (builds the binaries, installs h2load)."""

import argparse
import re
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench as B  # noqa: E402


def h2load(port, host, cookie, conns, streams, secs):
    cmd = ["h2load", "-c", str(conns), "-m", str(streams), "-D", str(secs),
           "--warm-up-time=1", "-H", f":authority: {host}",
           "-H", f"cookie: jrps_session={cookie}; __Host-jrps_session={cookie}",
           f"https://127.0.0.1:{port}/"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"finished in [\d.]+s, ([\d.]+) req/s", out).group(1))
    done = re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded", out)
    ok2xx = int(re.search(r"status codes: (\d+) 2xx", out).group(1))
    if ok2xx != int(done.group(2)):
        sys.exit(f"h2load on {port}: not every answer was 2xx\n{out}")
    if "h2" not in out:
        sys.exit(f"h2load on {port}: HTTP/2 was not negotiated\n{out}")
    return rps, int(done.group(1))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--work", default="/tmp/jrps-bench")
    ap.add_argument("--state-dir", default="/dev/shm/jrps-bench")
    ap.add_argument("--jrps", default=str(B.REPO / "target/release/jrps"),
                    help="the jrps binary; A,B[,C] to compare builds: each in turn, nginx beside")
    ap.add_argument("--conns", type=int, default=50)
    ap.add_argument("--streams", type=int, default=10)
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3, help="0: the memory figure only")
    ap.add_argument("--idle", type=int, default=2000,
                    help="idle HTTP/2 connections held for the memory figure (0: skip)")
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    B.fresh_setup(args.work, args.state_dir)
    P = B.P
    try:
        B.start("backend", [str(B.CLIENT), "backend", f"127.0.0.1:{P['backend']}"],
                wait_line="listening")
        B.start("jrps", [args.jrps.split(",")[0], "serve", "--config", str(B.WORK / "jrps.toml")],
                wait_line="ready")
        out = B.client("jrps-routes", f"127.0.0.1:{P['jrps']}", B.DOMAIN, B.TOKEN,
                       P["backend"], 1, 1)
        info = dict(line.split(" ", 1) for line in out.strip().splitlines())
        host, cookie = f"{info['alias']}.{B.DOMAIN}", info["cookie"]
        B.start("nginx", ["nginx", "-c", str(B.WORK / "nginx.conf"), "-g", "daemon off;"],
                wait_port=P["nginx-tls"])
        # Each jrps binary in turn serves TLS, on its own copy of the state
        # the first one registered the session in: a newer binary migrates
        # the schema of the file it opens, which an older one then refuses.
        binaries = args.jrps.split(",")
        names = ["jrps"] if len(binaries) == 1 else [f"jrps-{c}" for c in "ABC"[:len(binaries)]]
        if len(binaries) > 3:
            sys.exit("--jrps takes one binary, or two or three to compare")
        serving = None

        def serve_tls(binary):
            nonlocal serving
            if serving != binary:
                if serving is not None:
                    B.stop("jrps-tls")
                n = binaries.index(binary)
                state = B.STATE / f"jrps-tls-{n}.sqlite"
                if not state.exists():
                    with sqlite3.connect(B.STATE / "jrps.sqlite") as src, \
                            sqlite3.connect(state) as dst:
                        src.backup(dst)
                    # The state's key (cookies, sealed secrets) lives beside it.
                    shutil.copy(B.STATE / "jrps.sqlite.key", f"{state}.key")
                conf = B.WORK / f"jrps-tls-{n}.toml"
                conf.write_text((B.WORK / "jrps-tls.toml").read_text()
                                .replace(str(B.STATE / "jrps.sqlite"), str(state)))
                B.start("jrps-tls", [binary, "serve", "--config", str(conf)], wait_line="ready")
                serving = binary

        targets = {n: (P["jrps-tls"], "jrps-tls", b) for n, b in zip(names, binaries)}
        targets["nginx"] = (P["nginx-tls"], "nginx", None)
        rows = {name: [] for name in targets}
        # Memory first, on freshly started proxies: each held connection has
        # done one request, as after a page load, and is idle.
        idle = {}
        for name, (port, proc, binary) in targets.items() if args.idle else ():
            if binary:
                serve_tls(binary)
            before, after, held, err = B.hold_cost(B.pid_of(proc), "h2-hold", port, host, cookie,
                                                   args.idle)
            if held < args.idle:
                sys.exit(f"{name}: held {held} of {args.idle} HTTP/2 connections: {err}")
            idle[name] = (after - before) * 1024 / held
            B.log(f"  {name:7} {held} idle HTTP/2 connections: {idle[name] / 1024:5.1f} KiB each "
                  f"(PSS {before:,} -> {after:,} KiB)")
        for rnd in range(args.rounds):
            order = list(targets)
            for name in order[rnd % len(order):] + order[:rnd % len(order)]:
                port, proc, binary = targets[name]
                if binary:
                    serve_tls(binary)
                pid = B.pid_of(proc)
                before = B.cpu_ticks(pid)
                rps, done = h2load(port, host, cookie, args.conns, args.streams, args.duration)
                cpu_us = (B.cpu_ticks(pid) - before) / B.CLK_TCK * 1e6 / max(done, 1)
                rows[name].append((rps, cpu_us))
                B.log(f"  {name:7} round {rnd + 1}: {rps:9,.0f} req/s  {cpu_us:5.1f} µs/req  "
                      f"load {B.uptime()}")
    finally:
        B.stop_all()
    if not args.rounds:
        for name, per in idle.items():
            print(f"  {name:7} {per / 1024:5.1f} KiB per idle HTTP/2 connection")
        return
    med = {n: (statistics.median(r for r, _ in v), statistics.median(c for _, c in v))
           for n, v in rows.items()}
    nr, nc = med["nginx"]
    print(f"HTTP/2 over TLS, h2load -c {args.conns} -m {args.streams}, median of "
          f"{args.rounds} x {args.duration} s:")
    for name, (r, c) in med.items():
        mem = f"  {idle[name] / 1024:5.1f} KiB per idle connection" if name in idle else ""
        print(f"  {name:7} {r:9,.0f} req/s  {c:5.1f} µs CPU/req{mem}")
    for name in names:
        r, c = med[name]
        mem = f", {idle[name] / idle['nginx']:.2f}x memory per idle connection" if idle else ""
        print(f"  {name}/nginx: {r / nr:.2f}x req/s, {c / nc:.2f}x CPU per request{mem}")


if __name__ == "__main__":
    main()
