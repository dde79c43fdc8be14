# A server that answers with far more than an image of the asked size (a runaway proxy, a
# wrong endpoint) does not fill kiln's memory: each answer is capped per engine and per
# exchange (a base64 image of the asked size, or the image file, plus slack; JSON otherwise),
# the transfer is cut at the cap, the attempt fails naming the endpoint and the cap, and the
# retry renders the item.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ai_common.inc"
MIB=256
check() { # engine path oversized-answers failed-attempts
	P=$T/$1
	config "{\"oversize_mb\": $MIB, \"oversize_path\": \"$2\", \"oversize_count\": $3}"
	"$KILN" -C "$P" plan -q || fail "plan $1"
	"$KILN" -C "$P" render -q 2>"$T/err.$1"
	expect_eq "$1: render exit (the retries succeed)" $? 0
	sqlite3 "$P/.kiln/catalog.db" "select error from renders where status = 'failed'" >"$T/errors.$1"
	expect_eq "$1: failed attempts" "$(wc -l <"$T/errors.$1")" "$4"
	expect_contains "$1: the error names the endpoint and the cap" "$T/errors.$1" \
		"$U$2"
	expect_contains "$1: the error says the transfer was cut" "$T/errors.$1" \
		"the most kiln takes from this endpoint for it; the transfer was cut"
	sent=$(stats | $PY -c 'import sys,json; print(json.load(sys.stdin).get("oversize_bytes_sent", 0))')
	# answers of 256 MiB each were offered; the caps are a few MiB (plus socket buffers)
	[ "$sent" -lt $(($3 * 32 * 1048576)) ] && ok || fail "$1: $sent bytes went out: the transfer was not cut"
	expect_eq "$1: all rendered" "$(sqlite3 "$P/.kiln/catalog.db" "select count(*) from items where status='rendered'")" 60
}
start_server --protocol a1111
ai_owls "$T/a1111" a1111 's/, auth_env: KILN_GPU_AUTH//'
check a1111 /sdapi/v1/txt2img 2 2
# the cap (one 512x512 base64 image, as the ai-owls halo units add a ControlNet map each,
# plus 4 MiB) is in the message
grep -Eq "larger than (5592408|6990512) bytes" "$T/errors.a1111" && ok || fail "a1111 cap: $(cat "$T/errors.a1111")"
stop_server
start_server --protocol comfyui
ai_owls "$T/comfyui" comfyui 's/, auth_env: KILN_GPU_AUTH//'
# a failed /view is looked at again (KILN_POLL_ERRORS = 8 times) before the attempt fails
check comfyui /view 8 1
# a 512x512 image file: 512*512*4 + 4 MiB
expect_contains "comfyui cap" "$T/errors.comfyui" "larger than 5242880 bytes"
finish
