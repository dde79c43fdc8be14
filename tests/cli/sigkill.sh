# kill -9 in the middle of a render, run it again: every item is rendered, none twice.
. "$(dirname "$0")/lib.sh"
P=$T/owls
owls "$P"
"$KILN" -C "$P" plan -q || fail "plan"
for delay in 0.15 0.4 0.7; do
	"$KILN" -C "$P" render --threads 1 -q &
	pid=$!
	sleep $delay
	kill -9 $pid 2>/dev/null
	wait $pid 2>/dev/null
done
"$KILN" -C "$P" render -q
expect_eq "render after kills exit" $? 0
"$KILN" -C "$P" render --json | tail -1 >"$T/sum"
expect_contains "nothing left" "$T/sum" '"todo":0'
# accepted renders: exactly one per item
sqlite3 "$P/.kiln/catalog.db" "select count(*), count(distinct item_id) from renders where status='ok'" >"$T/q"
expect_eq "one accepted render per item" "$(cat "$T/q")" "60|60"
expect_eq "rendered items" "$(sqlite3 "$P/.kiln/catalog.db" "select count(*) from items where status='rendered'")" 60
# every recorded image is in the store, whole
$PY - "$P" <<'PY' >"$T/py" 2>&1
import sqlite3, sys, hashlib, os
p = sys.argv[1]
db = sqlite3.connect(p + "/.kiln/catalog.db")
for (img,) in db.execute("select image from items"):
    data = open(f"{p}/.kiln/store/{img[:2]}/{img}", "rb").read()
    assert hashlib.sha256(data).hexdigest() == img
left = [f for r, d, fs in os.walk(p + "/.kiln/store") for f in fs if ".tmp-" in f]
print("ok", len(left))
PY
expect_contains "store intact" "$T/py" ok
"$KILN" -C "$P" release -q
expect_eq "release after kills" $? 0
finish
