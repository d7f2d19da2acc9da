#!/usr/bin/env python3
"""The state backends side by side: `jrps serve` on its SQLite file and two
replicas on one PostgreSQL database, on loopback, against one fast backend.

Measured, in one run:
- API creates+registers per second (N sessions, CONC clients in parallel):
  SQLite; PostgreSQL through one replica; PostgreSQL spread over both;
- activation latency, the register call's answer to the first proxied 200
  (p50/p99/max over many sessions): on one SQLite proxy, and across
  replicas (registered through A, first 200 through B);
- request-path throughput (wrk, c=50, interleaved rounds) on SQLite and on
  PostgreSQL: the request path reads memory only, so the ratio should be 1.

Both databases are on the same disk and durable as configured for
production: SQLite `synchronous = FULL`, PostgreSQL's defaults (fsync on,
synchronous commit). The PostgreSQL cluster is private: initdb into the work
dir, a Unix socket there, as the `postgres` user when run as root.

Run through `scripts/bench --state` (builds the binaries)."""

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
JRPS = REPO / "target/release/jrps"
CLIENT = REPO / "target/release/examples/bench_client"
DOMAIN = "bench.localhost"
TOKEN = "bench-token-0123456789abcdef0123456789abcdef"
PORTS = {"backend": 18180, "sqlite": 18181, "pg-a": 18182, "pg-b": 18183}
PROCS = []


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def pg_bin():
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                      key=lambda p: int(p.parent.parent.name))
    if not versions:
        sys.exit("PostgreSQL is not installed (apt-get install postgresql)")
    return versions[-1].parent


def as_server_user(cmd):
    if os.geteuid() == 0:
        return ["setpriv", "--reuid=postgres", "--regid=postgres", "--clear-groups", "--", *cmd]
    return cmd


def start(name, cmd, wait_line=None):
    log(f"start {name}")
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    PROCS.append((name, p))
    if wait_line:
        for line in p.stdout:
            if line.strip().startswith(wait_line):
                break
        else:
            sys.exit(f"{name} exited before `{wait_line}`")
    return p


def stop_all():
    for name, p in reversed(PROCS):
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()


def start_postgres(work):
    bin_dir = pg_bin()
    pg = work / "pg"
    pg.mkdir()
    if os.geteuid() == 0:
        shutil.chown(pg, "postgres", "postgres")
    os.chmod(pg, 0o755)
    subprocess.run(as_server_user([str(bin_dir / "initdb"), "-D", str(pg / "data"), "-U", "jrps",
                                   "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"]),
                   check=True, capture_output=True)
    start("postgres", as_server_user([str(bin_dir / "postgres"), "-D", str(pg / "data"),
                                      "-k", str(pg), "-c", "listen_addresses=",
                                      "-c", "max_connections=200"]))
    deadline = time.time() + 30
    while subprocess.run([str(bin_dir / "pg_isready"), "-q", "-h", str(pg), "-U", "jrps"]).returncode:
        if time.time() > deadline:
            sys.exit("postgres did not start")
        time.sleep(0.05)
    subprocess.run([str(bin_dir / "psql"), "-h", str(pg), "-U", "jrps", "-d", "postgres", "-qc",
                    "CREATE DATABASE jrps", "-c",
                    "REVOKE CONNECT, TEMPORARY ON DATABASE jrps FROM PUBLIC"], check=True)
    return "postgres://jrps@" + str(pg).replace("/", "%2F") + "/jrps"


def proxy_config(work, name, state, port):
    path = work / f"{name}.toml"
    path.write_text(f"""domain = "{DOMAIN}"
listen = "127.0.0.1:{port}"
access_log = false
state = "{state}"
cookie_key = "{work}/cookie.key"
allowed_client_cidrs = ["127.0.0.0/8"]
allowed_backend_cidrs = ["127.0.0.0/8"]
# The sessions registered from addresses nothing listens on must stay up.
health_check_interval_s = 3600
[limits]
max_connections = 40000
max_connections_per_address = 40000
max_sessions_per_user = 1000000
max_sessions_per_client = 1000000
max_sessions = 1000000
""")
    return path


def client(*args):
    r = subprocess.run([str(CLIENT), *map(str, args)], capture_output=True, text=True, timeout=900)
    if r.returncode:
        sys.exit(f"bench_client {args[0]} failed: {r.stderr.strip()[-500:]}")
    return r


def api(name):
    return f"127.0.0.1:{PORTS[name]}"


def creates_per_second(targets, n, conc, from_bases=None):
    """n sessions created and registered, split over `targets` run at once
    (each registering from its own addresses when `from_bases` are given)."""
    started = time.perf_counter()
    procs = [subprocess.Popen([str(CLIENT), "jrps-routes", api(t), DOMAIN, TOKEN,
                               str(PORTS["backend"]), str(n // len(targets)), str(conc),
                               *([from_bases[i]] if from_bases else [])],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i, t in enumerate(targets)]
    outs = [p.communicate(timeout=900) for p in procs]
    elapsed = time.perf_counter() - started
    for p, (out, err) in zip(procs, outs):
        if p.returncode:
            sys.exit(f"jrps-routes failed: {err[-500:]}")
    info = dict(line.split(" ", 1) for line in outs[0][0].strip().splitlines())
    return n / elapsed, info


def activation(api_name, serve_name, n):
    out = client("jrps-activate", api(api_name), DOMAIN, TOKEN, PORTS["backend"], n,
                 api(serve_name)).stdout
    p50, p99, worst = (int(x) for x in out.split())
    return p50, p99, worst


def wrk_rps(name, alias, cookie, secs):
    headers = ["-H", f"Host: {alias}.{DOMAIN}", "-H", f"Cookie: jrps_session={cookie}"]
    url = f"http://{api(name)}/"
    subprocess.run(["wrk", "-t2", "-c50", "-d1s", *headers, url], capture_output=True, check=True)
    out = subprocess.run(["wrk", "-t2", "-c50", f"-d{secs}s", *headers, url],
                         capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in out:
        sys.exit(f"wrk on {name}: non-2xx answers\n{out}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--work", default="/tmp/jrps-bench-state")
    ap.add_argument("--sessions", type=int, default=2000, help="for creates+registers/s")
    ap.add_argument("--conc", type=int, default=16)
    ap.add_argument("--activations", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=5)
    args = ap.parse_args()
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        url = start_postgres(work)
        for addr in ("127.0.0.1", "127.0.0.2"):
            start(f"backend {addr}", [str(CLIENT), "backend", f"{addr}:{PORTS['backend']}"],
                  wait_line="listening")
        for name, state in [("sqlite", f"{work}/state.sqlite"), ("pg-a", url), ("pg-b", url)]:
            start(name, [str(JRPS), "serve", "--config",
                         str(proxy_config(work, name, state, PORTS[name]))], wait_line="ready")

        res = {}
        log("creates+registers")
        res["sqlite_cps"], sqlite_info = creates_per_second(["sqlite"], args.sessions, args.conc)
        res["pg_cps"], pg_info = creates_per_second(["pg-a"], args.sessions, args.conc)
        res["pg_both_cps"], _ = creates_per_second(["pg-a", "pg-b"], args.sessions, args.conc,
                                                   ["127.2.0.0", "127.3.0.0"])
        log("activation latency")
        res["act_sqlite"] = activation("sqlite", "sqlite", args.activations)
        res["act_pg_same"] = activation("pg-a", "pg-a", args.activations)
        res["act_pg_across"] = activation("pg-a", "pg-b", args.activations)
        log("request path")
        sq, pg = [], []
        for _ in range(args.rounds):
            sq.append(wrk_rps("sqlite", sqlite_info["alias"], sqlite_info["cookie"], args.duration))
            pg.append(wrk_rps("pg-b", pg_info["alias"], pg_info["cookie"], args.duration))
        res["rps_sqlite"], res["rps_pg"] = statistics.median(sq), statistics.median(pg)
    finally:
        stop_all()

    ms = lambda us: f"{us / 1000:.2f} ms"
    print(f"""creates+registers per second ({args.sessions} sessions, {args.conc} clients per proxy):
  SQLite                         {res['sqlite_cps']:8.0f}/s
  PostgreSQL, one replica        {res['pg_cps']:8.0f}/s   ({res['pg_cps'] / res['sqlite_cps']:.2f}x SQLite)
  PostgreSQL, spread over two    {res['pg_both_cps']:8.0f}/s   ({res['pg_both_cps'] / res['sqlite_cps']:.2f}x SQLite)
activation, register answered -> first proxied 200 ({args.activations} sessions; p50 / p99 / max):
  SQLite, one proxy              {ms(res['act_sqlite'][0])} / {ms(res['act_sqlite'][1])} / {ms(res['act_sqlite'][2])}
  PostgreSQL, same replica       {ms(res['act_pg_same'][0])} / {ms(res['act_pg_same'][1])} / {ms(res['act_pg_same'][2])}
  PostgreSQL, A to B             {ms(res['act_pg_across'][0])} / {ms(res['act_pg_across'][1])} / {ms(res['act_pg_across'][2])}
request path, wrk c=50, median of {args.rounds} x {args.duration} s:
  SQLite {res['rps_sqlite']:.0f} req/s, PostgreSQL {res['rps_pg']:.0f} req/s ({res['rps_pg'] / res['rps_sqlite']:.3f}x)""")


if __name__ == "__main__":
    main()
