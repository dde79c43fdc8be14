# AI render progress and `kiln status` per endpoint. Two A1111 endpoints: one healthy, one
# faulty on its job submissions (500s, hangs, dropped connections, black and truncated
# images). The bar on a terminal has a line per endpoint redrawn in place; --json progress
# events carry per-endpoint counters at a bounded rate; `kiln status --json` counts every
# failed attempt by kind, exactly as the server dealt them out.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ai_common.inc"
start_server --protocol a1111 --latency-ms 30
GOOD=$U
start_server --protocol a1111 --latency-ms 30 --fault-scope jobs --fault-seed 3 \
	--fail-rate 0.2 --hang-rate 0.04 --drop-rate 0.1 --black-rate 0.1 --truncate-rate 0.1
BAD=$U
P=$T/p
ai_owls "$P" a1111 's/, auth_env: KILN_GPU_AUTH//; s/timeout: 3}/timeout: 1}/'
$PY - "$P/kiln.yaml" "$GOOD" <<'EOF'
import sys
p, good = sys.argv[1], sys.argv[2]
s = open(p).read()
end = s.index("timeout: 1}") + len("timeout: 1}")
s = s[:end] + '\n    - {url: "%s", concurrency: 2, timeout: 1}' % good + s[end:]
open(p, "w").write(s)
EOF
"$KILN" -C "$P" plan -q || fail plan

# on a terminal: a line per endpoint and the overall bar, redrawn in place (cursor up 2)
if command -v script >/dev/null 2>&1; then
	TERM=xterm script -qfec "'$KILN' -C '$P' render" /dev/null >"$T/tty" 2>&1
	expect_eq "render on a tty" $? 0
	expect_contains "good endpoint line" "$T/tty" "$GOOD a1111"
	expect_contains "bad endpoint line" "$T/tty" "$BAD a1111"
	expect_contains "endpoint counters" "$T/tty" "running "
	expect_contains "overall bar" "$T/tty" "60/60 100%"
	$PY - "$T/tty" <<'EOF' >"$T/tty.check" 2>&1
import sys, re
t = open(sys.argv[1], "rb").read().decode("utf-8", "replace")
ups = t.count("\x1b[2A")
assert ups >= 1, "never redrawn in place"
m = re.search(r"rendered, \d+ failed, \d+ up to date in ([0-9.]+) s", t)
secs = float(m.group(1))
assert ups <= secs * 10 + 3, (ups, secs)   # at most ten redraws a second
assert re.search(r"(ok|backing off|parked|checking) +done \d+ +failed \d+ +running \d/\d +[0-9.]+/min", t)
assert re.search(r"/min ETA \d+:\d\d", t)
print("ok")
EOF
	expect_contains "redraws in place, at most 10/s" "$T/tty.check" ok
else
	echo "no script(1): terminal output not checked"
	"$KILN" -C "$P" render -q || fail "render"
fi

# --json: progress events with per-endpoint counters, at most two a second
"$KILN" -C "$P" render --force --json >"$T/events" 2>"$T/err"
expect_eq "render --json exit" $? 0
$PY - "$T/events" "$GOOD" "$BAD" "$P/.kiln/catalog.db" <<'EOF' >"$T/events.check" 2>&1
import sys, json, sqlite3
ev = [json.loads(l) for l in open(sys.argv[1])]
good, bad = sys.argv[2], sys.argv[3]
prog = [e for e in ev if e["event"] == "progress"]
end = [e for e in ev if e["event"] == "end"][0]
assert prog, "no progress events"
last = {}
for e in prog + [end]:
    eps = {x["url"]: x for x in e["endpoints"]}
    assert set(eps) == {good, bad}, eps.keys()
    for u, x in eps.items():
        assert x["state"] in ("ok", "backing_off", "parked", "checking", "given_up"), x
        assert 0 <= x["in_flight"] <= x["concurrency"], x
        assert x["done"] >= last.get(u, 0), (u, x, last)
        assert x["sent"] >= x["done"] + x["failed"] - x["in_flight"], x
        last[u] = x["done"]
    assert e["images_per_minute"] >= 0
for a, b in zip(prog, prog[1:]):
    assert b["elapsed"] - a["elapsed"] >= 0.4, (a["elapsed"], b["elapsed"])
eps = {x["url"]: x for x in end["endpoints"]}
assert eps[good]["done"] + eps[bad]["done"] == 59, eps
assert eps[good]["failed"] == 0, eps[good]
db = sqlite3.connect(sys.argv[4])
since = float(db.execute("select value from meta where key = 'ai_run_started'").fetchone()[0])
n = db.execute("select count(*) from renders where endpoint = ? and status = 'failed' "
               "and started_at >= ?", (bad, since)).fetchone()[0]
assert eps[bad]["failed"] == n, (eps[bad], n)
items = [e for e in ev if e["event"] == "item" and e.get("endpoint")]
assert len(items) == 59 and all(e["endpoint"] in (good, bad) for e in items)
print("ok")
EOF
expect_contains "json progress events" "$T/events.check" ok

# kiln status: per endpoint, the last run's throughput and latency, every run's failures by
# kind, equal to the faults the server dealt
"$KILN" -C "$P" status --json >"$T/status.json"
expect_eq "status --json exit" $? 0
requests /sdapi/v1/txt2img >"$T/bad.requests"
$PY - "$T/status.json" "$GOOD" "$BAD" "$T/bad.requests" <<'EOF' >"$T/status.check" 2>&1
import sys, json
st = json.load(open(sys.argv[1]))
good, bad = sys.argv[2], sys.argv[3]
reqs = json.load(open(sys.argv[4]))
eps = {x["endpoint"]: x for x in st["endpoints"]}
assert set(eps) == {good, bad}, eps.keys()
g, b = eps[good], eps[bad]
assert g["failed"] == 0 and not any(g["errors"].values()), g
assert g["ok"] + b["ok"] == 118, (g["ok"], b["ok"])                 # two runs
assert g["last_run"]["ok"] + b["last_run"]["ok"] == 59, (g, b)     # the last one
for x in (g, b):
    r = x["last_run"]
    assert r["images_per_minute"] > 0 and r["seconds"] > 0, x
    assert 0.03 <= r["latency_mean"] <= r["latency_p95"], x      # the server takes 30 ms
    assert x["attempts"] == x["ok"] + x["failed"], x
want = {"timeout": sum(r["fault"] == "hang" for r in reqs),
        "http_5xx": sum(r["fault"] == "fail" for r in reqs),
        "connection": sum(r["fault"] == "drop" for r in reqs),
        "bad_image": sum(r["fault"] is None and r["job_fault"] in ("black", "truncate")
                         for r in reqs),
        "http_4xx": 0, "job_failed": 0, "other": 0}
assert b["errors"] == want, (b["errors"], want)
assert b["failed"] == sum(want.values()) > 0, b
assert b["attempts"] == len(reqs), (b["attempts"], len(reqs))
print("ok")
EOF
expect_contains "status per endpoint" "$T/status.check" ok
"$KILN" -C "$P" status >"$T/status.txt"
expect_contains "status: last run" "$T/status.txt" "the last run ("
expect_contains "status: latency" "$T/status.txt" "latency mean"
expect_contains "status: failures by kind" "$T/status.txt" "$BAD"
expect_contains "status: a kind named" "$T/status.txt" "HTTP 5xx"

# a credential variable that is not user:pass: exit 2, naming where in kiln.yaml
A=$T/auth
ai_owls "$A" a1111
"$KILN" -C "$A" plan -q || fail plan
KILN_GPU_AUTH=no-colon "$KILN" -C "$A" render -q 2>"$T/auth.err"
expect_eq "bad credential exit" $? 2
expect_contains "bad credential: where" "$T/auth.err" "kiln.yaml:25:"
expect_contains "bad credential: what to do" "$T/auth.err" "auth_env names KILN_GPU_AUTH, which does not hold user:pass"
finish
