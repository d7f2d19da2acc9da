"""The cost of `identity = "munge"` per API call: the same status call
against two `jrps serve` (plain HTTP, loopback), one with identity off and
one with munge, credentials made before timing; and the client's cost of
making one. Needs a running munged (scripts/slurm up starts one) and a
release build:  python3 bench/identity.py [JRPS] [MUNGE_SOCKET]"""
import subprocess, time, json, os, sys, hashlib, tempfile, urllib.request, statistics
J = sys.argv[1] if len(sys.argv) > 1 else "target/release/jrps"
S = sys.argv[2] if len(sys.argv) > 2 else "/var/lib/jrps-slurm/munge/munge.socket"
WORK = tempfile.mkdtemp(prefix="jrps-identity-")
def start(name, extra):
    d=f"{WORK}/{name}"; os.makedirs(d, exist_ok=True)
    open(f"{d}/proxy.toml","w").write(f'domain = "jrps.localhost"\nlisten = "127.0.0.1:0"\nstate = "{d}/state.sqlite"\nallowed_client_cidrs = ["127.0.0.0/8"]\nallowed_backend_cidrs = ["127.0.0.0/8"]\naccess_log = false\n{extra}')
    p=subprocess.Popen([J,"serve","--config",f"{d}/proxy.toml"],stdout=subprocess.PIPE,stderr=subprocess.DEVNULL,text=True)
    port=None
    for line in p.stdout:
        if line.startswith("listening"): port=line.strip().rsplit(":",1)[1]
        if line.strip()=="ready": break
    return p, port
def cred(method, path, body=b""):
    # The payload binds the call (`jrps::api::call_payload`).
    payload=f"jrps-api v2\n{method} /api/v1{path}\nsha256:{hashlib.sha256(body).hexdigest()}"
    return subprocess.run(["munge","-s",payload,"-S",S],capture_output=True,text=True,check=True).stdout.strip()
def call(port, method, path, body=b"", auth=None):
    req=urllib.request.Request(f"http://127.0.0.1:{port}/api/v1{path}", method=method, data=body or None, headers={"Host":"manage.jrps.localhost","Content-Type":"application/json", **({"Authorization":f"Munge {auth}"} if auth else {})})
    with urllib.request.urlopen(req) as r: return json.loads(r.read() or b"null")
res={}
for name, extra in [("none",""),("munge",f'identity = "munge"\nmunge_socket = "{S}"\n')]:
    p,port=start(name, extra)
    munge = name=="munge"
    create=json.dumps({"user":"root","token_sha256":hashlib.sha256(b"t").hexdigest(),"ttl_seconds":600}).encode()
    s=call(port,"POST","/sessions",create, cred("POST","/sessions",create) if munge else None)
    N=300
    creds=[cred("GET",f"/sessions/{s['alias']}") for _ in range(N)] if munge else [None]*N
    times=[]
    for c in creds:
        t=time.perf_counter(); call(port,"GET",f"/sessions/{s['alias']}",b"",c); times.append(time.perf_counter()-t)
    res[name]=statistics.median(times)*1000
    p.terminate(); p.wait()
t=time.perf_counter()
for _ in range(100): cred("GET","/sessions/amber-otter-lagoon")
mk=(time.perf_counter()-t)/100*1000
print(f"status call, median of 300: identity none {res['none']:.3f} ms, munge {res['munge']:.3f} ms; check adds {res['munge']-res['none']:.3f} ms; making a credential (client side, munge) {mk:.2f} ms")
