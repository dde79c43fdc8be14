#!/bin/sh
# The compose engine's progress: on a terminal a bar with count, rate and ETA; with --json an
# event per item, "progress" events with the rate and ETA (at most two a second), a summary.
. "$KILN_SRC/tests/cli/lib.sh"
P=$T/owls
owls "$P"
"$KILN" -C "$P" plan -q >/dev/null 2>&1
expect_eq "plan exit" $? 0

if command -v script >/dev/null 2>&1; then
	TERM=xterm script -qfec "'$KILN' -C '$P' render --force --threads 2" /dev/null >"$T/tty" 2>&1
	expect_eq "render on a terminal exit" $? 0
	tr '\r' '\n' <"$T/tty" >"$T/tty.lines"
	expect_contains "bar reaches the end" "$T/tty.lines" "60/60"
	expect_contains "bar shows a rate" "$T/tty.lines" "/s"
	expect_contains "bar shows an ETA" "$T/tty.lines" "ETA"
else
	echo "no script(1): terminal output not checked"
fi

# not a terminal and not --json: no bar drawn into a log
"$KILN" -C "$P" render --force --threads 2 >"$T/plain" 2>&1
expect_eq "render exit" $? 0
if grep -q "ETA" "$T/plain"; then fail "a progress bar went into a log file"; else ok; fi

"$KILN" -C "$P" render --force --json >"$T/events" 2>"$T/err"
expect_eq "render --json exit" $? 0
$PY - "$T/events" <<'PY' >"$T/check" 2>&1
import sys, json
ev = [json.loads(l) for l in open(sys.argv[1])]
items = [e for e in ev if e["event"] == "item"]
prog = [e for e in ev if e["event"] == "progress"]
assert len(items) == 60, len(items)
assert sorted(e["id"] for e in items) == sorted(set(e["id"] for e in items)), "an item twice"
assert all(e["ok"] for e in items)
assert prog, "no progress event"
for e in prog:
    assert e["stage"] == "render" and e["total"] == 60 and 0 <= e["done"] <= 60, e
    assert e["images_per_minute"] >= 0, e
    if e["done"]:
        assert "eta_seconds" in e and e["eta_seconds"] >= 0, e
assert ev[-1]["event"] == "summary" and ev[-1]["rendered"] == 60, ev[-1]
print("ok")
PY
expect_contains "json events: items, progress with rate and ETA, summary" "$T/check" ok
finish
