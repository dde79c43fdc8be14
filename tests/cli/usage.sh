# The command's surface beyond one command line: kiln in the current folder, the plan report.
. "$(dirname "$0")/lib.sh"
# help, usage errors, -C to a folder without a project, render/release before plan: cases in
# tests/cases/cli/. Here what takes more than one command.
P=$T/owls
owls "$P"
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
