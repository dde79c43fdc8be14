# Numbers on the command line are read whole or refused (exit 2, naming the value): no
# wrap-around of huge ids, no negative numbers read as 2^64-1, no trailing junk. (Those that
# need no project are cases: tests/cases/cli/threads-*, init-size-too-big.)
. "$(dirname "$0")/lib.sh"
P=$T/owls
owls "$P"
"$KILN" -C "$P" plan -q >/dev/null 2>&1
expect_eq "plan" $? 0
check() { # what want-exit want-text args...
	what=$1 want=$2 text=$3
	shift 3
	"$KILN" -C "$P" "$@" >"$T/o" 2>&1
	expect_eq "$what: exit" $? "$want"
	[ -z "$text" ] || expect_contains "$what: message" "$T/o" "$text"
}
check "show a huge id" 2 "'99999999999999999999999' is not an item id" show 99999999999999999999999
check "show 2^64-1" 2 "is not an item id" show 18446744073709551615
check "show -1" 2 "'-1' is not an item id" show -- -1
check "show 12abc" 2 "'12abc' is not an item id" show 12abc
check "show +5" 2 "'+5' is not an item id" show +5
check "show past the collection" 1 "no such item" show 9007199254740991
check "show a real id" 0 "" show 5
check "render --dry-run huge" 2 "--dry-run takes an item id" render --dry-run 99999999999999999999
check "plan --replace -1" 2 "--replace takes a token id" plan --replace -1
check "release --starting-index 2^64" 2 "--starting-index" release --starting-index 18446744073709551616
finish
