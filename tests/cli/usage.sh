# The command's surface: help, usage errors, -C, exit codes.
. "$(dirname "$0")/lib.sh"
"$KILN" --help >"$T/h"
expect_eq "--help" $? 0
for v in init plan render release build status ls show; do
	"$KILN" "$v" --help >"$T/h" 2>&1
	expect_eq "$v --help" $? 0
	expect_contains "$v help has usage" "$T/h" "usage: kiln $v"
	expect_contains "top help lists $v" "$T/h" "$v"
done
"$KILN" frobnicate >"$T/o" 2>&1
expect_eq "unknown verb" $? 2
"$KILN" plan --bogus >"$T/o" 2>&1
expect_eq "unknown option" $? 2
"$KILN" >"$T/o" 2>&1
expect_eq "no verb" $? 2
"$KILN" -C "$T/none" status >"$T/o" 2>&1
expect_eq "-C to a folder without a project" $? 2
expect_contains "says what to do" "$T/o" "kiln init"
"$KILN" render --threads 0 >"$T/o" 2>&1
expect_eq "bad --threads" $? 2
P=$T/owls
owls "$P"
"$KILN" -C "$P" render >"$T/o" 2>&1
expect_eq "render before plan" $? 1
expect_contains "render before plan says what to do" "$T/o" "kiln plan"
"$KILN" -C "$P" release >"$T/o" 2>&1
expect_eq "release before render" $? 1
(cd "$P" && "$KILN" plan -q)
expect_eq "plan in the current folder" $? 0
"$KILN" -C "$P" plan --report >"$T/r"
expect_contains "report has targets" "$T/r" "target"
"$KILN" -C "$P" plan --report --json >"$T/rj"
$PY - "$T/rj" <<'PY' >"$T/py" 2>&1
import json, sys
r = json.load(open(sys.argv[1]))
assert all(v["diff"] == 0 for l in r["layers"] for v in l["values"])
assert len(r["tokens"]) == 60
print("ok")
PY
expect_contains "report json: every diff 0" "$T/py" ok
finish
