#!/usr/bin/env python3
"""jrps serve side by side with nginx, Apache httpd and configurable-http-proxy.

Run through scripts/bench (which installs what is missing and builds the
binaries). Everything listens on 127.0.0.1 only. Writes results.json and
table.txt into the work dir and, unless --no-write, BENCHMARKS.md.
"""

import argparse
import json
import os
import platform
import re
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DOMAIN = "bench.localhost"
TOKEN = "bench-token-0123456789abcdef0123456789abcdef"
CLK_TCK = os.sysconf("SC_CLK_TCK")

P = {
    "backend": 18080,
    "jrps": 18081, "nginx": 18082, "apache": 18083, "chp": 18084,
    "jrps-tls": 18441, "nginx-tls": 18442, "apache-tls": 18443, "chp-tls": 18444,
    "chp-api": 18094, "chp-tls-api": 18095,
    "jrps-100k": 18085, "chp-100k": 18086, "chp-100k-api": 18096,
}
CHP_AUTH = "bench-chp-auth"

PROCS = []  # (name, Popen) to stop at the end


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def sh(cmd, **kw):
    return subprocess.run(cmd, shell=True, check=True, text=True, capture_output=True, **kw).stdout


def uptime():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


# ---------------------------------------------------------------- /proc

def children(pid):
    out = []
    try:
        for c in Path(f"/proc/{pid}/task").iterdir():
            try:
                out += [int(x) for x in (c / "children").read_text().split()]
            except OSError:
                pass
    except OSError:
        pass
    return out


def tree(pid):
    todo, seen = [pid], []
    while todo:
        p = todo.pop()
        seen.append(p)
        todo += children(p)
    return seen


def cpu_ticks(pid):
    """utime+stime of the process tree, plus reaped children of the root."""
    total = 0
    for i, p in enumerate(tree(pid)):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # fields[0] is state (field 3); utime is field 14 -> index 11
        total += int(fields[11]) + int(fields[12])
        if i == 0:
            total += int(fields[13]) + int(fields[14])
    return total


def pss_kib(pid):
    total = 0
    for p in tree(pid):
        try:
            for line in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


# ---------------------------------------------------------------- processes

def hold_cost(pid, what, port, host, cookie, n):
    """Opens n idle connections with bench_client's `what` (ws-hold,
    h2-hold) and measures the proxy's memory (PSS, KiB) before and while
    they are held; returns (before, after, held, client's stderr)."""
    before = pss_kib(pid)
    p = subprocess.Popen([str(CLIENT), what, f"127.0.0.1:{port}", host, cookie, str(n)],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    line = p.stdout.readline().split()
    held = int(line[1]) if len(line) > 1 else 0
    time.sleep(2)  # let the proxy's allocator settle
    after = pss_kib(pid)
    p.stdin.close()
    err = p.stderr.read().strip()
    p.wait(60)
    return before, after, held, err


def start(name, cmd, env=None, wait_line=None, wait_port=None, cwd=None):
    logf = open(WORK / f"{name}.log", "w")
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE if wait_line else logf, stderr=logf,
                         env={**os.environ, **(env or {})}, text=True, cwd=cwd,
                         start_new_session=True)
    PROCS.append((name, p))
    if wait_line:
        deadline = time.time() + 30
        while time.time() < deadline:
            line = p.stdout.readline()
            if not line:
                raise SystemExit(f"{name} exited; see {WORK}/{name}.log")
            if line.strip() == wait_line or line.startswith(wait_line):
                break
    if wait_port:
        wait_for_port(wait_port, name)
    return p


def wait_for_port(port, name):
    import socket
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"{name} is not listening on {port}; see {WORK}/{name}.log")


def stop(name):
    for n, p in list(PROCS):
        if n == name and p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
    PROCS[:] = [(n, p) for n, p in PROCS if n != name]


def stop_all():
    for n, _ in list(reversed(PROCS)):
        stop(n)


def pid_of(name):
    for n, p in PROCS:
        if n == name:
            return p.pid
    raise KeyError(name)


# ---------------------------------------------------------------- configs

def fresh_setup(work, state_dir):
    """For the scripts that import this one (h2.py, browser.py): the work
    and state dirs, no state left from an earlier run, bench.py's configs."""
    global WORK, STATE, CLIENT
    WORK, STATE = Path(work), Path(state_dir)
    WORK.mkdir(parents=True, exist_ok=True)
    STATE.mkdir(parents=True, exist_ok=True)
    CLIENT = REPO / "target/release/examples/bench_client"
    for f in STATE.glob("jrps*.sqlite*"):
        f.unlink()
    write_configs()


def write_configs(per_address=True):
    """proxy.toml for each jrps instance. The WebSocket hold opens 10,000
    tunnels from one address to one session and the route test makes
    100,000 sessions of one user, so those caps are lifted, and health checks are off (the
    route test's other sessions point at addresses where nothing listens).
    An A/B against a binary older than these settings leaves them out
    (`per_address`), since its own runs stay far below the defaults."""
    per_address = ("max_connections_per_address = 40000\nmax_sessions_per_user = 200000\n"
                   "max_sessions_per_client = 200000\nmax_sessions = 200000\n"
                   "max_websockets_per_session = 40000\n"
                   # h2load's 50 connections x 10 streams are 500 requests
                   # at once to one session.
                   "max_requests_per_session = 40000\n"
                   if per_address else "")
    health = "health_check_interval_s = 86400\n" if per_address else ""
    cert, key = WORK / "cert.pem", WORK / "key.pem"
    if not cert.exists():
        sh(f"openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3 "
           f"-subj /CN={DOMAIN} -addext 'subjectAltName=DNS:*.{DOMAIN},DNS:{DOMAIN}' "
           f"-keyout {key} -out {cert}")
    b = P["backend"]
    host = f"alias.{DOMAIN}"
    (WORK / "nginx").mkdir(exist_ok=True)
    (WORK / "nginx.conf").write_text(f"""
user root;
worker_processes auto;
pid {WORK}/nginx.pid;
error_log {WORK}/nginx-error.log warn;
worker_rlimit_nofile 100000;
events {{ worker_connections 30000; }}
http {{
  access_log off;
  # nginx closes a connection after 1,000 requests by default (HTTP/2 too),
  # and h2load does not reconnect; jrps sets no such limit.
  keepalive_requests 1000000;
  client_body_temp_path {WORK}/nginx/body;
  proxy_temp_path {WORK}/nginx/proxy;
  fastcgi_temp_path {WORK}/nginx/fastcgi;
  uwsgi_temp_path {WORK}/nginx/uwsgi;
  scgi_temp_path {WORK}/nginx/scgi;
  map $http_upgrade $connection_upgrade {{ default upgrade; '' ''; }}
  # Idle upstream connections kept: above the most requests in flight (h2load's
  # 500), so nginx never closes and reopens backend connections under load.
  upstream backend {{ server 127.0.0.1:{b}; keepalive 1024; }}
  server {{
    listen 127.0.0.1:{P['nginx']};
    listen 127.0.0.1:{P['nginx-tls']} ssl http2;
    server_name {host};
    ssl_certificate {cert};
    ssl_certificate_key {key};
    location / {{
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Host $host;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_set_header X-Forwarded-For $remote_addr;
      proxy_set_header X-Real-IP $remote_addr;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Forwarded-Host $host;
      proxy_read_timeout 3600s;
    }}
  }}
}}
""")
    mods = "/usr/lib/apache2/modules"
    STATE.mkdir(parents=True, exist_ok=True)
    proxy = f"""  ProxyPreserveHost On
  ProxyPass / http://127.0.0.1:{b}/ upgrade=websocket keepalive=On
  ProxyPassReverse / http://127.0.0.1:{b}/
  RequestHeader set X-Forwarded-Proto %s
"""
    (WORK / "apache.conf").write_text(f"""
ServerRoot {WORK}
DefaultRuntimeDir {WORK}
PidFile {WORK}/apache.pid
ErrorLog {WORK}/apache-error.log
LogLevel warn
LoadModule mpm_event_module {mods}/mod_mpm_event.so
LoadModule authz_core_module {mods}/mod_authz_core.so
LoadModule headers_module {mods}/mod_headers.so
LoadModule proxy_module {mods}/mod_proxy.so
LoadModule proxy_http_module {mods}/mod_proxy_http.so
LoadModule socache_shmcb_module {mods}/mod_socache_shmcb.so
LoadModule ssl_module {mods}/mod_ssl.so
User www-data
Group www-data
ServerName bench
Timeout 3600
KeepAlive On
MaxKeepAliveRequests 0
StartServers 2
ServerLimit 16
ThreadsPerChild 64
ThreadLimit 64
MaxRequestWorkers 1024
MinSpareThreads 128
MaxSpareThreads 1024
MaxConnectionsPerChild 0
Listen 127.0.0.1:{P['apache']}
Listen 127.0.0.1:{P['apache-tls']} https
SSLSessionCache shmcb:{WORK}/ssl_scache(512000)
<VirtualHost 127.0.0.1:{P['apache']}>
  ServerName {host}
{proxy % 'http'}</VirtualHost>
<VirtualHost 127.0.0.1:{P['apache-tls']}>
  ServerName {host}
  SSLEngine on
  SSLCertificateFile {cert}
  SSLCertificateKeyFile {key}
{proxy % 'https'}</VirtualHost>
""")
    for name, port, tls in [("jrps", P["jrps"], False), ("jrps-tls", P["jrps-tls"], True),
                            ("jrps-100k", P["jrps-100k"], False)]:
        state = "jrps-100k.sqlite" if name == "jrps-100k" else "jrps.sqlite"
        tls_lines = f'tls_cert = "{cert}"\ntls_key = "{key}"\n' if tls else ""
        (WORK / f"{name}.toml").write_text(f"""
domain = "{DOMAIN}"
listen = "127.0.0.1:{port}"
{tls_lines}access_log = false
state = "{STATE}/{state}"
allowed_client_cidrs = ["127.0.0.0/8"]
allowed_backend_cidrs = ["127.0.0.0/8"]
{health}[limits]
max_connections = 40000
{per_address}""")


# ---------------------------------------------------------------- targets

def chp_cmd(port, api, tls=False):
    cmd = [str(CHP), "--ip", "127.0.0.1", "--port", str(port), "--api-ip", "127.0.0.1",
           "--api-port", str(api), "--host-routing", "--log-level", "warn"]
    if tls:
        cmd += ["--ssl-key", str(WORK / "key.pem"), "--ssl-cert", str(WORK / "cert.pem")]
    return cmd


def client(*args, capture=True, timeout=900):
    r = subprocess.run([str(CLIENT), *map(str, args)], text=True, capture_output=capture,
                       timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError(f"bench_client {args[0]} failed: {r.stderr.strip()[-500:]}")
    return r.stdout


def start_targets():
    start("backend", [str(CLIENT), "backend", f"127.0.0.1:{P['backend']}"], wait_line="listening")
    # The same backend on a second address, for the activation runs: the
    # session below holds 127.0.0.1's route, and a backend address routes to
    # one live session at a time.
    start("backend-2", [str(CLIENT), "backend", f"127.0.0.2:{P['backend']}"], wait_line="listening")
    start("jrps", [str(JRPS), "serve", "--config", str(WORK / "jrps.toml")], wait_line="ready")
    out = client("jrps-routes", f"127.0.0.1:{P['jrps']}", DOMAIN, TOKEN, P["backend"], 1, 1)
    info = dict(line.split(" ", 1) for line in out.strip().splitlines())
    alias, cookie = info["alias"], info["cookie"]
    # Same state file: the TLS instance loads the session at start.
    start("jrps-tls", [str(JRPS), "serve", "--config", str(WORK / "jrps-tls.toml")],
          wait_line="ready")
    start("nginx", ["nginx", "-c", str(WORK / "nginx.conf"), "-g", "daemon off;"],
          wait_port=P["nginx"])
    start("apache", ["apache2", "-f", str(WORK / "apache.conf"), "-DFOREGROUND"],
          wait_port=P["apache"])
    env = {"CONFIGPROXY_AUTH_TOKEN": CHP_AUTH}
    start("chp", chp_cmd(P["chp"], P["chp-api"]), env=env, wait_port=P["chp-api"])
    start("chp-tls", chp_cmd(P["chp-tls"], P["chp-tls-api"], tls=True), env=env,
          wait_port=P["chp-tls-api"])
    host = f"{alias}.{DOMAIN}"
    for api in (P["chp-api"], P["chp-tls-api"]):
        add_chp_route(api, host)
    return host, cookie


def add_chp_route(api, host):
    import urllib.request
    req = urllib.request.Request(
        f"http://127.0.0.1:{api}/api/routes/{host}", method="POST",
        data=json.dumps({"target": f"http://127.0.0.1:{P['backend']}"}).encode(),
        headers={"Authorization": f"token {CHP_AUTH}", "Content-Type": "application/json"})
    urllib.request.urlopen(req).read()


# ---------------------------------------------------------------- measurements

UNITS = {"us": 1, "ms": 1000, "s": 1_000_000}


def parse_wrk(out):
    def lat(p):
        m = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        return float(m.group(1)) * UNITS[m.group(2)] if m else None
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    reqs = int(re.search(r"(\d+) requests in", out).group(1))
    errs = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: (.*)", out)
    return {"rps": rps, "requests": reqs, "p50_us": lat(50), "p99_us": lat(99),
            "non2xx": int(errs.group(1)) if errs else 0, "sock_errors": sock.group(1) if sock else ""}


def wrk(target, pid, url, host, cookie, conns, secs):
    threads = 1 if conns == 1 else 2
    # Both names: the plain listener's and the `__Host-` one TLS uses.
    headers = ["-H", f"Host: {host}", "-H",
               f"Cookie: jrps_session={cookie}; __Host-jrps_session={cookie}"]
    # A second of warm-up, not measured: connections to the target and from
    # it to the backend are open before the clock starts, whichever target
    # ran just before.
    subprocess.run(["wrk", f"-t{threads}", f"-c{conns}", "-d1s", *headers, url],
                   capture_output=True, check=True)
    cmd = ["wrk", f"-t{threads}", f"-c{conns}", f"-d{secs}s", "--latency", *headers, url]
    before = cpu_ticks(pid) if pid else 0
    out = subprocess.run(cmd, text=True, capture_output=True, check=True).stdout
    after = cpu_ticks(pid) if pid else 0
    r = parse_wrk(out)
    r["cpu_us_per_req"] = ((after - before) / CLK_TCK * 1e6 / r["requests"]) if pid and r["requests"] else None
    r["load"] = uptime()
    if r["non2xx"] or r["sock_errors"]:
        log(f"  WARNING {target}: non-2xx {r['non2xx']} socket errors {r['sock_errors']}")
    return r


def http_targets():
    t = {"direct": (f"http://127.0.0.1:{P['backend']}/", None)}
    for name in ("jrps", "nginx", "apache", "chp"):
        t[name] = (f"http://127.0.0.1:{P[name]}/", pid_of(name))
    return t


def https_targets():
    return {
        "jrps": (f"https://127.0.0.1:{P['jrps-tls']}/", pid_of("jrps-tls")),
        "nginx": (f"https://127.0.0.1:{P['nginx-tls']}/", pid_of("nginx")),
        "apache": (f"https://127.0.0.1:{P['apache-tls']}/", pid_of("apache")),
        "chp": (f"https://127.0.0.1:{P['chp-tls']}/", pid_of("chp-tls")),
    }


def ws_targets():
    return {"direct": P["backend"], "jrps": P["jrps"], "nginx": P["nginx"],
            "apache": P["apache"], "chp": P["chp"]}


def median(xs):
    xs = sorted(x for x in xs if x is not None)
    if not xs:
        return None
    m = len(xs) // 2
    return xs[m] if len(xs) % 2 else (xs[m - 1] + xs[m]) / 2


def run(args):
    global WORK
    res = {"runs": [], "meta": {}}
    host, cookie = start_targets()
    res["meta"]["host"] = host
    log(f"targets up; Host {host}; load {uptime()}")
    secs = args.duration
    rounds = args.rounds

    def rec(kind, target, r, **extra):
        r = {"kind": kind, "target": target, **extra, **r}
        res["runs"].append(r)
        short = {k: (round(v, 1) if isinstance(v, float) else v) for k, v in r.items()
                 if k in ("rps", "p50_us", "p99_us", "cpu_us_per_req", "load", "round")}
        log(f"  {kind:10} {target:8} {short}")

    # Warm-up: one short run each, not recorded.
    for name, (url, pid) in http_targets().items():
        wrk(name, pid, url, host, cookie, 50, 1)

    for rnd in range(rounds):
        order = list(http_targets().items())
        if rnd % 2:
            order.reverse()
        for conns in (1, 50):
            for name, (url, pid) in order:
                rec(f"http-c{conns}", name, wrk(name, pid, url, host, cookie, conns, secs), round=rnd)
        tls_order = list(https_targets().items())
        if rnd % 2:
            tls_order.reverse()
        for name, (url, pid) in tls_order:
            rec("https-c50", name, wrk(name, pid, url, host, cookie, 50, secs), round=rnd)
        for rep in range(3):
            for name, port in ws_targets().items():
                out = client("ws-rtt", f"127.0.0.1:{port}", host, cookie, args.ws_msgs)
                p50, p99 = map(int, out.split())
                rec("ws-rtt", name, {"p50_us": p50, "p99_us": p99, "load": uptime()},
                    round=rnd, rep=rep)

    # Idle WebSockets held through each proxy. A proxy process needs two
    # descriptors per WebSocket; the hard RLIMIT_NOFILE may not allow 10,000.
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    cap = (hard - 200) // 2
    res["meta"]["ws_hold_cap"] = cap
    for n in args.ws_hold:
        asked, n = n, min(n, cap)
        for name in ("jrps", "nginx", "apache", "chp"):
            before, after, held, err = hold_cost(pid_of(name), "ws-hold", P[name], host, cookie, n)
            per = (after - before) * 1024 / held if held else None
            rec("ws-idle", name, {"n": asked, "held": held, "bytes_per_ws": per,
                                  "tried": n, "pss_before_kib": before, "pss_after_kib": after,
                                  "load": uptime()})
            if err:
                log(f"    {err[-300:]}")
            time.sleep(2)  # let closes settle

    # Route activation: register answered -> first proxied 200.
    out = client("jrps-activate", f"127.0.0.1:{P['jrps']}", DOMAIN, TOKEN, P["backend"],
                 args.activations)
    p50, p99, mx = map(int, out.split())
    rec("activate", "jrps", {"p50_us": p50, "p99_us": p99, "max_us": mx, "load": uptime()})
    out = client("chp-activate", f"127.0.0.1:{P['chp-api']}", CHP_AUTH, f"127.0.0.1:{P['chp']}",
                 DOMAIN, f"http://127.0.0.1:{P['backend']}", args.activations)
    p50, p99, mx = map(int, out.split())
    rec("activate", "chp", {"p50_us": p50, "p99_us": p99, "max_us": mx, "load": uptime()})

    # Many routes: a second instance of jrps and of chp with N routes, interleaved
    # with the one-route instance. The others are stopped so their idle work does
    # not weigh on these runs.
    for name in ("nginx", "apache", "chp-tls", "jrps-tls"):
        stop(name)
    n = args.routes
    start("jrps-100k", [str(JRPS), "serve", "--config", str(WORK / "jrps-100k.toml")],
          wait_line="ready")
    t = time.time()
    out = client("jrps-routes", f"127.0.0.1:{P['jrps-100k']}", DOMAIN, TOKEN, P["backend"], n, 32)
    info = dict(line.split(" ", 1) for line in out.strip().splitlines())
    res["meta"]["jrps_routes_setup_s"] = time.time() - t
    host_many, cookie_many = f"{info['alias']}.{DOMAIN}", info["cookie"]
    env = {"CONFIGPROXY_AUTH_TOKEN": CHP_AUTH}
    start("chp-100k", chp_cmd(P["chp-100k"], P["chp-100k-api"]), env=env,
          wait_port=P["chp-100k-api"])
    t = time.time()
    client("chp-routes", f"127.0.0.1:{P['chp-100k-api']}", CHP_AUTH, DOMAIN,
           f"http://127.0.0.1:{P['backend']}", n - 1, 16)
    add_chp_route(P["chp-100k-api"], host)
    res["meta"]["chp_routes_setup_s"] = time.time() - t
    time.sleep(3)  # let the sweeps and checks of the fresh instance run once
    for rnd in range(rounds):
        pairs = [("jrps", "1", P["jrps"], host, cookie),
                 ("jrps", str(n), P["jrps-100k"], host_many, cookie_many),
                 ("chp", "1", P["chp"], host, cookie),
                 ("chp", str(n), P["chp-100k"], host, cookie)]
        if rnd % 2:
            pairs.reverse()
        for target, routes, port, h, c in pairs:
            name = {"jrps": "jrps", "chp": "chp"}[target]
            inst = name if routes == "1" else f"{name}-100k"
            r = wrk(inst, pid_of(inst), f"http://127.0.0.1:{port}/", h, c, 50, secs)
            rec("routes-c50", target, r, routes=int(routes), round=rnd)
    res["meta"]["jrps_100k_pss_kib"] = pss_kib(pid_of("jrps-100k"))
    res["meta"]["jrps_1_pss_kib"] = pss_kib(pid_of("jrps"))
    # Idle CPU of the many-route instance (sweep, health checks) over 10 s.
    pid = pid_of("jrps-100k")
    before = cpu_ticks(pid)
    time.sleep(10)
    res["meta"]["jrps_100k_idle_cpu_pct"] = (cpu_ticks(pid) - before) / CLK_TCK / 10 * 100
    return res


def ab(args):
    """Two jrps binaries side by side on one backend: rounds of wrk c=50 and
    c=1 alternating between them, CPU per request from /proc."""
    a, b = args.ab.split(",")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    STATE.mkdir(parents=True, exist_ok=True)
    for f in STATE.glob("jrps*.sqlite*"):
        f.unlink()
    write_configs(per_address=False)
    if args.ab_b_extra:
        conf = WORK / "jrps-100k.toml"
        text = conf.read_text()
        conf.write_text(text.replace("[limits]", args.ab_b_extra.replace("\\n", "\n") + "\n[limits]"))
    if args.ab_b_limits:
        conf = WORK / "jrps-100k.toml"
        conf.write_text(conf.read_text() + args.ab_b_limits.replace("\\n", "\n") + "\n")
    if args.ab_limits:
        for conf in (WORK / "jrps.toml", WORK / "jrps-100k.toml"):
            conf.write_text(conf.read_text() + args.ab_limits.replace("\\n", "\n") + "\n")
    try:
        start("backend", [str(CLIENT), "backend", f"127.0.0.1:{P['backend']}"], wait_line="listening")
        start("A", [a, "serve", "--config", str(WORK / "jrps.toml")], wait_line="ready")
        out = client("jrps-routes", f"127.0.0.1:{P['jrps']}", DOMAIN, TOKEN, P["backend"],
                     args.ab_routes, 32)
        info = dict(line.split(" ", 1) for line in out.strip().splitlines())
        host, cookie = f"{info['alias']}.{DOMAIN}", info["cookie"]
        start("B", [b, "serve", "--config", str(WORK / "jrps-100k.toml").replace("100k", "100k")],
              wait_line="ready")
        # B gets its own state: make the same session through its API.
        out = client("jrps-routes", f"127.0.0.1:{P['jrps-100k']}", DOMAIN, TOKEN, P["backend"],
                     args.ab_routes, 32)
        info = dict(line.split(" ", 1) for line in out.strip().splitlines())
        hb, cb = f"{info['alias']}.{DOMAIN}", info["cookie"]
        if args.ab_idle:
            ticks = {name: cpu_ticks(pid_of(name)) for name in ("A", "B")}
            time.sleep(args.ab_idle)
            for name in ("A", "B"):
                pct = (cpu_ticks(pid_of(name)) - ticks[name]) / CLK_TCK / args.ab_idle * 100
                print(f"{name}: idle CPU {pct:.2f} % of one core over {args.ab_idle} s "
                      f"with {args.ab_routes:,} sessions")
        rows = {"A": [], "B": []}
        for rnd in range(args.rounds):
            for name, port, h, c in ([("A", P["jrps"], host, cookie), ("B", P["jrps-100k"], hb, cb)]
                                     [:: -1 if rnd % 2 else 1]):
                for conns in (50, 1):
                    r = wrk(name, pid_of(name), f"http://127.0.0.1:{port}/", h, c, conns, args.duration)
                    rows[name].append((conns, r))
                    log(f"  {name} c={conns:<2} rps {r['rps']:>9,.0f}  p50 {r['p50_us']:>7,.0f} µs  "
                        f"p99 {r['p99_us'] or 0:>8,.0f} µs  cpu {r['cpu_us_per_req'] or 0:5.1f} µs/req  "
                        f"errors {r['sock_errors'] or '-'}  load {r['load']}")
            for name, port, h, c in [("A", P["jrps"], host, cookie), ("B", P["jrps-100k"], hb, cb)]:
                out = client("ws-rtt", f"127.0.0.1:{port}", h, c, args.ws_msgs)
                log(f"  {name} ws rtt p50/p99 {out.strip()} µs")
        for name in ("A", "B"):
            for conns in (50, 1):
                rs = [r for c, r in rows[name] if c == conns]
                print(f"{name} c={conns}: rps {median([r['rps'] for r in rs]):,.0f}  "
                      f"cpu {median([r['cpu_us_per_req'] for r in rs]) or 0:.1f} µs/req  "
                      f"p99 {median([r['p99_us'] for r in rs]) or 0:,.0f} µs")
        for name, port, h, c in [("A", P["jrps"], host, cookie), ("B", P["jrps-100k"], hb, cb)]:
            pid = pid_of(name)
            before = pss_kib(pid)
            p = subprocess.Popen([str(CLIENT), "ws-hold", f"127.0.0.1:{port}", h, c, "2000"],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            held = int(p.stdout.readline().split()[1])
            time.sleep(2)
            after = pss_kib(pid)
            p.stdin.close()
            p.wait(60)
            print(f"{name}: {(after - before) * 1024 / max(held, 1):,.0f} bytes per idle WebSocket ({held} held)")
    finally:
        stop_all()


# ---------------------------------------------------------------- report

def summarize(res):
    runs = res["runs"]

    def pick(kind, target, key, **f):
        return median([r.get(key) for r in runs if r["kind"] == kind and r["target"] == target
                       and all(r.get(k) == v for k, v in f.items())])

    direct = {c: pick(f"http-c{c}", "direct", "rps") for c in (1, 50)}
    direct_ws = pick("ws-rtt", "direct", "p50_us")
    direct_ws99 = pick("ws-rtt", "direct", "p99_us")
    rows = []
    names = ["direct", "jrps", "nginx", "apache", "chp"]
    for t in names:
        row = {"target": t}
        for c in (1, 50):
            rps = pick(f"http-c{c}", t, "rps")
            row[f"rps_c{c}"] = rps
            row[f"ratio_c{c}"] = rps / direct[c] if rps and direct[c] else None
            row[f"p50_c{c}"] = pick(f"http-c{c}", t, "p50_us")
            row[f"p99_c{c}"] = pick(f"http-c{c}", t, "p99_us")
            row[f"cpu_c{c}"] = pick(f"http-c{c}", t, "cpu_us_per_req")
        https = pick("https-c50", t, "rps")
        row["https_rps"] = https
        row["https_ratio"] = https / direct[50] if https and direct[50] else None
        row["https_cpu"] = pick("https-c50", t, "cpu_us_per_req")
        row["ws_p50"] = pick("ws-rtt", t, "p50_us")
        row["ws_p99"] = pick("ws-rtt", t, "p99_us")
        # Added latency: against the direct measurement of the same round
        # (taken just before), median over rounds.
        added, added99 = [], []
        for r in runs:
            if r["kind"] == "ws-rtt" and r["target"] == t:
                d = [x for x in runs if x["kind"] == "ws-rtt" and x["target"] == "direct"
                     and x.get("round") == r.get("round") and x.get("rep") == r.get("rep")]
                if d:
                    added.append(r["p50_us"] - d[0]["p50_us"])
                    added99.append(r["p99_us"] - d[0]["p99_us"])
        row["ws_added"] = median(added)
        row["ws_added99"] = median(added99)
        for r in runs:
            if r["kind"] == "ws-idle" and r["target"] == t:
                row[f"ws_idle_{r['n']}"] = r["bytes_per_ws"]
                row[f"ws_held_{r['n']}"] = r["held"]
        one = pick("routes-c50", t, "rps", routes=1)
        many = [r for r in runs if r["kind"] == "routes-c50" and r["target"] == t and r["routes"] > 1]
        if one and many:
            row["routes_ratio"] = median([r["rps"] for r in many]) / one
            row["routes_cpu_1"] = pick("routes-c50", t, "cpu_us_per_req", routes=1)
            row["routes_cpu_n"] = median([r["cpu_us_per_req"] for r in many])
        for r in runs:
            if r["kind"] == "activate" and r["target"] == t:
                row["act_p50"], row["act_p99"] = r["p50_us"], r["p99_us"]
        rows.append(row)
    return rows


def fmt(v, d=0, unit=""):
    if v is None:
        return "–"
    if isinstance(v, float) and d == 0:
        return f"{v:,.0f}{unit}"
    return f"{v:,.{d}f}{unit}"


def table(res, rows, routes_n):
    hdr = ["", *[r["target"] for r in rows]]
    lines = []

    def line(label, key, d=0, unit="", ratio=None):
        cells = [label]
        for r in rows:
            v = r.get(key)
            s = fmt(v, d, unit)
            if ratio and r.get(ratio) is not None:
                s += f" ({r[ratio]:.2f})"
            cells.append(s)
        lines.append(cells)

    line("HTTP c=1 req/s (× direct)", "rps_c1", ratio="ratio_c1")
    line("HTTP c=1 p50 / µs", "p50_c1")
    line("HTTP c=1 p99 / µs", "p99_c1")
    line("HTTP c=1 proxy CPU µs/req", "cpu_c1", 1)
    line("HTTP c=50 req/s (× direct)", "rps_c50", ratio="ratio_c50")
    line("HTTP c=50 p50 / µs", "p50_c50")
    line("HTTP c=50 p99 / µs", "p99_c50")
    line("HTTP c=50 proxy CPU µs/req", "cpu_c50", 1)
    line("HTTPS c=50 req/s (× direct HTTP)", "https_rps", ratio="https_ratio")
    line("HTTPS c=50 proxy CPU µs/req", "https_cpu", 1)
    line("WebSocket RTT p50 / µs", "ws_p50")
    line("WebSocket RTT p99 / µs", "ws_p99")
    line("WebSocket added p50 / µs", "ws_added")
    line("WebSocket added p99 / µs", "ws_added99")
    for n in ARGS.ws_hold:
        line(f"bytes per idle WebSocket, {n:,} held", f"ws_idle_{n}")
        line(f"  WebSockets held (of {n:,} asked)", f"ws_held_{n}")
    line(f"c=50 req/s with {routes_n:,} routes ÷ 1 route", "routes_ratio", 3)
    line(f"  CPU µs/req, 1 route", "routes_cpu_1", 1)
    line(f"  CPU µs/req, {routes_n:,} routes", "routes_cpu_n", 1)
    line("activation p50 / µs", "act_p50")
    line("activation p99 / µs", "act_p99")
    widths = [max(len(str(c[i])) for c in [hdr, *lines]) for i in range(len(hdr))]
    text = ["| " + " | ".join(str(h).ljust(w) for h, w in zip(hdr, widths)) + " |",
            "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    for c in lines:
        text.append("| " + " | ".join(str(x).ljust(w) if i == 0 else str(x).rjust(w)
                                      for i, (x, w) in enumerate(zip(c, widths))) + " |")
    return "\n".join(text)


def versions():
    def v(cmd):
        try:
            r = subprocess.run(cmd, shell=True, text=True, capture_output=True)
            return (r.stdout + r.stderr).strip().splitlines()[0]
        except Exception:
            return "?"
    return {
        "jrps": v(f"{JRPS} --version") + " (" + v(f"git -C {REPO} rev-parse --short HEAD") + ")",
        "nginx": v("nginx -v"),
        "apache": v("apache2 -v"),
        "configurable-http-proxy": v(f"{CHP} --version"),
        "node": v("node --version"),
        "wrk": v("wrk --version"),
        "rustc": v("rustc --version"),
        "kernel": platform.release(),
        "cpu": v("grep -m1 'model name' /proc/cpuinfo").split(":", 1)[-1].strip(),
        "cores": str(os.cpu_count()),
        "memory": v("free -h | awk '/Mem:/ {print $2}'"),
    }


def main():
    global WORK, JRPS, CLIENT, CHP, ARGS, STATE
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", default="/tmp/jrps-bench")
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--ws-msgs", type=int, default=10000)
    ap.add_argument("--ws-hold", type=lambda s: [int(x) for x in s.split(",")], default=[1000, 10000])
    ap.add_argument("--routes", type=int, default=100000)
    ap.add_argument("--activations", type=int, default=200)
    ap.add_argument("--state-dir", default="/dev/shm/jrps-bench")
    ap.add_argument("--ab", help="A/B two jrps binaries: A,B (interleaved c=50 runs, CPU per request)")
    ap.add_argument("--ab-routes", type=int, default=1, help="sessions in each A/B instance")
    ap.add_argument("--ab-idle", type=int, default=0, help="seconds of idle CPU to measure in A/B")
    ap.add_argument("--ab-b-extra", help="top-level proxy.toml lines for B, e.g. 'workers = 1'")
    ap.add_argument("--ab-b-limits", help="[limits] lines for B, e.g. 'max_connections_per_address = 40000'")
    ap.add_argument("--ab-limits", help="[limits] lines for both A and B (two builds of the same code)")
    ap.add_argument("--no-write", action="store_true", help="do not rewrite BENCHMARKS.md")
    ap.add_argument("--report-only", help="re-render from a results.json")
    ARGS = args = ap.parse_args()
    WORK = Path(args.work)
    WORK.mkdir(parents=True, exist_ok=True)
    # jrps's SQLite state on tmpfs: every API change is fsynced before it
    # answers, and 200,000 fsyncs on a shared disk would make the 100,000-route
    # set-up take minutes. The request path never touches SQLite.
    STATE = Path(args.state_dir)
    JRPS = REPO / "target/release/jrps"
    CLIENT = REPO / "target/release/examples/bench_client"
    CHP = WORK / "chp/node_modules/.bin/configurable-http-proxy"
    if args.ab:
        return ab(args)
    if args.report_only:
        res = json.loads(Path(args.report_only).read_text())
        for k, val in res["meta"]["args"].items():
            if k not in ("report_only", "no_write"):
                setattr(args, k, val)
    else:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        STATE.mkdir(parents=True, exist_ok=True)
        for f in ("jrps.sqlite", "jrps.sqlite-wal", "jrps.sqlite-shm", "jrps-100k.sqlite",
                  "jrps-100k.sqlite-wal", "jrps-100k.sqlite-shm"):
            (STATE / f).unlink(missing_ok=True)
        write_configs()
        load_start = uptime()
        started = time.time()
        try:
            res = run(args)
        finally:
            stop_all()
        res["meta"].update({"load_start": load_start, "load_end": uptime(),
                            "seconds": round(time.time() - started),
                            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                            "versions": versions(), "args": vars(args)})
        (WORK / "results.json").write_text(json.dumps(res, indent=1))
    rows = summarize(res)
    text = table(res, rows, args.routes)
    (WORK / "table.md").write_text(text + "\n")
    m = res["meta"]
    print(f"\n{m['date']}  load at start {m['load_start']}, at end {m['load_end']}  "
          f"({m['seconds']} s)\n")
    print(text)
    print(f"\njrps: {args.routes:,} routes set up through the API in "
          f"{m.get('jrps_routes_setup_s', 0):.1f} s; chp in {m.get('chp_routes_setup_s', 0):.1f} s; "
          f"jrps idle CPU with them {m.get('jrps_100k_idle_cpu_pct', 0):.2f} %")
    print(f"raw results: {WORK}/results.json")
    if not args.no_write:
        import report
        report.write(REPO / "BENCHMARKS.md", res, text, rows, args)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
