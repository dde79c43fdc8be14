# One writer per project: a verb that writes takes .kiln/lock and fails at once, naming the
# holder, when another process has it; read-only verbs (status, ls, show) take no lock, open
# the catalog read-only and so also work on a folder nobody may write.
. "$(dirname "$0")/lib.sh"
P=$T/p
owls "$P"
# reading a project never planned writes nothing
"$KILN" -C "$P" status >"$T/st0" 2>&1
expect_eq "status before any plan" $? 0
[ -e "$P/.kiln" ] && fail "status made .kiln/" || ok
"$KILN" -C "$P" plan -q || fail plan
# another process holds the lock and has recorded itself (as kiln does: pid verb since)
flock "$P/.kiln/lock" sh -c 'echo "$$ render 2026-12-07T04:00:00Z" >"$1"; exec sleep 30' sh \
	"$P/.kiln/lock" &
HOLDER=$!
for _ in $(seq 100); do [ -s "$P/.kiln/lock" ] && break; sleep 0.05; done
HPID=$(cut -d' ' -f1 "$P/.kiln/lock")
"$KILN" -C "$P" plan --force >"$T/out" 2>"$T/err"
expect_eq "second writer exit" $? 1
expect_contains "names the lock file" "$T/err" "kiln: $P/.kiln/lock: the project is locked by"
expect_contains "names the holder" "$T/err" "kiln render (pid $HPID, since 2026-12-07T04:00:00Z)"
expect_contains "hint with the pid" "$T/err" "hint: wait for it to finish (process $HPID)"
for verb in render release build qa; do
	"$KILN" -C "$P" $verb -q >/dev/null 2>"$T/err.$verb"
	expect_eq "$verb while locked" $? 1
	expect_contains "$verb names the holder" "$T/err.$verb" "(pid $HPID,"
done
cp "$P/kiln.yaml" "$T/spec.before"
"$KILN" -C "$P" init --force >/dev/null 2>"$T/err.init"
expect_eq "init while locked" $? 1
expect_contains "init names the holder" "$T/err.init" "(pid $HPID,"
cmp -s "$P/kiln.yaml" "$T/spec.before" && ok || fail "init overwrote kiln.yaml while locked"
# readers run beside it
"$KILN" -C "$P" status >"$T/status" 2>&1
expect_eq "status while locked" $? 0
expect_contains "status reads the catalog" "$T/status" "60 planned"
"$KILN" -C "$P" ls >"$T/ls" 2>&1
expect_eq "ls while locked" $? 0
expect_eq "ls lines" "$(wc -l <"$T/ls")" 61
"$KILN" -C "$P" show 1 >/dev/null 2>&1
expect_eq "show while locked" $? 0
kill "$HPID"
wait "$HOLDER" 2>/dev/null
"$KILN" -C "$P" plan --force -q
expect_eq "plan once the holder is gone" $? 0
"$KILN" -C "$P" build -q
expect_eq "build" $? 0
# a lock record left by a process that died (kill -9) does not name it
echo "999999999 render 2026-01-01T00:00:00Z" >"$P/.kiln/lock"
flock "$P/.kiln/lock" sh -c 'echo $$ >"$1"; exec sleep 30' sh "$T/holder2" &
HOLDER=$!
for _ in $(seq 100); do [ -s "$T/holder2" ] && break; sleep 0.05; done
"$KILN" -C "$P" plan --force 2>"$T/err2"
expect_eq "locked by an unrecorded holder" $? 1
expect_contains "unrecorded holder" "$T/err2" "locked by another process"
grep -q 999999999 "$T/err2" && fail "names a dead pid" || ok
kill "$(cat "$T/holder2")"
wait "$HOLDER" 2>/dev/null
# a folder nobody may write: the readers still work, nothing is written
as=""
if [ "$(id -u)" = 0 ]; then
	if command -v runuser >/dev/null && id nobody >/dev/null 2>&1; then
		as="runuser -u nobody --"
		chmod -R a+rX "$T"
	else
		as=skip
	fi
fi
if [ "$as" != skip ]; then
	sum=$(sha256sum "$P/.kiln/catalog.db")
	chmod -R a-w "$P"
	$as "$KILN" -C "$P" status >"$T/ro.status" 2>&1
	expect_eq "status on a read-only folder" $? 0
	expect_contains "status on a read-only folder says" "$T/ro.status" "60 rendered"
	$as "$KILN" -C "$P" ls >/dev/null 2>"$T/ro.ls"
	expect_eq "ls on a read-only folder" $? 0
	$as "$KILN" -C "$P" show 2 >/dev/null 2>"$T/ro.show"
	expect_eq "show on a read-only folder" $? 0
	$as "$KILN" -C "$P" verify >/dev/null 2>"$T/ro.verify"
	expect_eq "verify on a read-only folder" $? 0
	$as "$KILN" -C "$P" plan --force 2>"$T/ro.plan"
	expect_eq "plan on a read-only folder" $? 1
	expect_contains "plan on a read-only folder names the lock" "$T/ro.plan" "$P/.kiln/lock"
	expect_eq "catalog unchanged" "$(sha256sum "$P/.kiln/catalog.db")" "$sum"
	chmod -R u+w "$P"
else
	echo "skipped the read-only folder checks: root without runuser/nobody"
fi
finish
