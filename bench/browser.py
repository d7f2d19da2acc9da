#!/usr/bin/env python3
"""JupyterLab in headless Chromium: directly, through jrps, through nginx.

One real JupyterLab (the locked venv's) serves three ways: directly (plain
HTTP, as on the compute node), through jrps (HTTPS; Chromium picks HTTP/2)
and through nginx (HTTPS, `http2`, WebSockets proxied, keep-alive to
Jupyter). Per round and target, bench/browser/load.mjs opens the URL a user
would be given in a fresh browser profile (cold cache), then reloads it
(warm cache); each load ends when a notebook is open and its kernel idle.
Targets are interleaved and their order rotates every round; medians are
reported of: time to the Lab shell on screen, time to kernel idle, and
requests and bytes over the network per load.

Run through `scripts/bench --browser` (installs Chromium, nginx and
Playwright from bench/browser/package-lock.json, builds jrps)."""

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench as B  # noqa: E402

NOTEBOOK = {
    "cells": [{"cell_type": "code", "execution_count": None, "id": "a1", "metadata": {},
               "outputs": [], "source": ["6 * 7"]}],
    "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python",
                                "name": "python3"}},
    "nbformat": 4, "nbformat_minor": 5,
}
PORTS = {"jupyter": 18888, "nginx-lab": 18445}


def spki_pin(cert):
    der = subprocess.run(["openssl", "x509", "-pubkey", "-noout", "-in", str(cert)],
                         capture_output=True, check=True).stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "der"], input=der,
                         capture_output=True, check=True).stdout
    digest = subprocess.run(["openssl", "dgst", "-sha256", "-binary"], input=der,
                            capture_output=True, check=True).stdout
    return subprocess.run(["base64"], input=digest, capture_output=True,
                          check=True).stdout.decode().strip()


def nginx_conf(work, cert, key):
    (work / "nginx-lab").mkdir(exist_ok=True)
    conf = work / "nginx-lab.conf"
    conf.write_text(f"""
user root;
worker_processes auto;
pid {work}/nginx-lab.pid;
error_log {work}/nginx-lab-error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {work}/nginx-lab/body;
  proxy_temp_path {work}/nginx-lab/proxy;
  fastcgi_temp_path {work}/nginx-lab/fastcgi;
  uwsgi_temp_path {work}/nginx-lab/uwsgi;
  scgi_temp_path {work}/nginx-lab/scgi;
  map $http_upgrade $connection_upgrade {{ default upgrade; '' ''; }}
  upstream jupyter {{ server 127.0.0.1:{PORTS['jupyter']}; keepalive 64; }}
  server {{
    listen 127.0.0.1:{PORTS['nginx-lab']} ssl http2;
    ssl_certificate {cert};
    ssl_certificate_key {key};
    client_max_body_size 0;
    location / {{
      proxy_pass http://jupyter;
      proxy_http_version 1.1;
      proxy_set_header Host $http_host;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_set_header X-Forwarded-For $remote_addr;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_read_timeout 1d;
    }}
  }}
}}
""")
    return conf


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--work", default="/tmp/jrps-bench")
    ap.add_argument("--state-dir", default="/dev/shm/jrps-bench")
    ap.add_argument("--jrps", default=str(B.REPO / "target/release/jrps"))
    ap.add_argument("--jupyter", default=str(B.REPO / ".venv/bin/jupyter"))
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--targets", default="direct,jrps,nginx",
                    help="which of direct,jrps,nginx to load (all three for the table)")
    ap.add_argument("--json", help="also write every load's figures here")
    args = ap.parse_args()
    B.fresh_setup(args.work, args.state_dir)
    cert, key = B.WORK / "cert.pem", B.WORK / "key.pem"
    root = B.WORK / "lab-root"
    root.mkdir(exist_ok=True)
    (root / "bench.ipynb").write_text(json.dumps(NOTEBOOK))
    home = B.WORK / "lab-home"
    env = {"HOME": str(home), "JUPYTER_CONFIG_DIR": str(home / "config"),
           "JUPYTER_DATA_DIR": str(home / "data"), "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
           "PATH": f"{Path(args.jupyter).parent}:/usr/bin:/bin"}
    P = B.P
    # load.mjs runs beside the node_modules scripts/bench installed from
    # bench/browser/package-lock.json.
    loader = B.WORK / "browser/load.mjs"
    if not (B.WORK / "browser/node_modules/playwright-core").is_dir():
        sys.exit(f"no playwright-core in {B.WORK}/browser: run through scripts/bench --browser")
    loader.write_bytes((B.REPO / "bench/browser/load.mjs").read_bytes())
    try:
        # No Jupyter token: each proxy is where the browser is let in (jrps
        # by the URL's token), and the direct target has nothing in front.
        B.start("jupyter", [args.jupyter, "lab", "--no-browser", "--ip=127.0.0.1",
                            f"--port={PORTS['jupyter']}", f"--ServerApp.root_dir={root}",
                            "--IdentityProvider.token=", "--ServerApp.password=",
                            "--ServerApp.allow_remote_access=True",
                            "--LabApp.expose_app_in_browser=True", "--allow-root",
                            f"--LabApp.workspaces_dir={home / 'workspaces'}"],
                env=env, wait_port=PORTS["jupyter"], cwd=str(root))
        B.start("jrps", [args.jrps, "serve", "--config", str(B.WORK / "jrps.toml")],
                wait_line="ready")
        out = B.client("jrps-routes", f"127.0.0.1:{P['jrps']}", B.DOMAIN, B.TOKEN,
                       PORTS["jupyter"], 1, 1)
        alias = dict(line.split(" ", 1) for line in out.strip().splitlines())["alias"]
        B.start("jrps-tls", [args.jrps, "serve", "--config", str(B.WORK / "jrps-tls.toml")],
                wait_line="ready")
        B.start("nginx-lab", ["nginx", "-c", str(nginx_conf(B.WORK, cert, key)),
                              "-g", "daemon off;"], wait_port=PORTS["nginx-lab"])
        targets = {
            "direct": f"http://127.0.0.1:{PORTS['jupyter']}/",
            "jrps": f"https://{alias}.{B.DOMAIN}:{P['jrps-tls']}/?token={B.TOKEN}",
            "nginx": f"https://lab.{B.DOMAIN}:{PORTS['nginx-lab']}/",
        }
        targets = {n: u for n, u in targets.items() if n in args.targets.split(",")}
        pin = spki_pin(cert)
        rows = []

        def visit(name):
            config = {"chromium": args.chromium, "spki": pin, "url": targets[name],
                      "notebook": "bench.ipynb"}
            run = subprocess.run(["node", str(loader), json.dumps(config)], capture_output=True,
                                 text=True, timeout=300)
            if run.returncode != 0:
                sys.exit(f"{name}: load.mjs failed\n{run.stderr[-3000:]}")
            return [json.loads(line) for line in run.stdout.splitlines()]

        # One visit each first, not counted: Jupyter's first page build and
        # kernel start, and the workspace every later load restores.
        for name in targets:
            visit(name)
        order = list(targets)
        for rnd in range(args.rounds):
            for name in order[rnd % len(order):] + order[:rnd % len(order)]:
                for load in visit(name):
                    load.update(target=name, round=rnd + 1)
                    want = "http/1.1" if name == "direct" else "h2"
                    if set(load["protocols"]) != {want}:
                        sys.exit(f"{name} {load['load']}: responses came over "
                                 f"{load['protocols']}, not only {want}")
                    rows.append(load)
                    B.log(f"  {name:6} round {rnd + 1} {load['load']}: shell {load['shell_ms']:5} ms"
                          f"  kernel idle {load['idle_ms']:5} ms  {load['requests']:3} requests"
                          f"  {load['bytes'] / 1e6:5.2f} MB  {load['websockets']} WebSockets")
    finally:
        B.stop_all()
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    print(f"JupyterLab in headless Chromium, median of {args.rounds} interleaved rounds:")
    print(f"  {'':14} {'shell ms':>9} {'kernel idle ms':>15} {'requests':>9} {'MB':>6} "
          f"{'WebSockets':>11}")
    for load in ("cold", "warm"):
        med = {}
        for name in targets:
            mine = [r for r in rows if r["target"] == name and r["load"] == load]
            med[name] = {k: statistics.median(r[k] for r in mine)
                         for k in ("shell_ms", "idle_ms", "requests", "bytes", "websockets")}
            m = med[name]
            print(f"  {load} {name:9} {m['shell_ms']:9.0f} {m['idle_ms']:15.0f} "
                  f"{m['requests']:9.0f} {m['bytes'] / 1e6:6.2f} {m['websockets']:11.0f}")
        for name in ("jrps", "nginx") if len(med) == 3 else ():
            print(f"  {load} {name}/direct: {med[name]['shell_ms'] / med['direct']['shell_ms']:.2f}x "
                  f"shell, {med[name]['idle_ms'] / med['direct']['idle_ms']:.2f}x kernel idle")
        if len(med) == 3:
            print(f"  {load} jrps/nginx: {med['jrps']['shell_ms'] / med['nginx']['shell_ms']:.2f}x "
                  f"shell, {med['jrps']['idle_ms'] / med['nginx']['idle_ms']:.2f}x kernel idle")


if __name__ == "__main__":
    main()
