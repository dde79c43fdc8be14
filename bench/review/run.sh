#!/bin/sh
# bench/review: the review server on N tokens of 1024x1024 images (issue 13's Speed section).
#  - thumbnails: `kiln review` making every token's 512 px WebP thumbnail ahead (a worker
#    thread per core, libvips one thread each) against `vipsthumbnail -s 512` on the same
#    files, one process per core at a time, each with one libvips thread (VIPS_CONCURRENCY=1:
#    the same number of threads): ratio kiln / vipsthumbnail (target <= 1);
#  - API latency, p50/p99 of the next token's data (GET /api/tokens/{id}) and of a decision
#    (POST .../decision) with 1 and with 20 concurrent clients (target: decision p99 < 20 ms
#    with 20);
#  - the server's peak RSS (VmHWM; target < 200 MiB).
#    Two loads: closed loop (each client sends as soon as the last answer came: the stress
#    figure, 1 and 20 clients) and paced (20 reviewers, each deciding every 250..1000 ms at
#    random, latency from the scheduled send so queueing counts: the target's load).
# usage: bench/review/run.sh [BUILD_DIR] [N] [REQUESTS_PER_CLIENT]   (default build 10000 200)
# KILN_BENCH_PACED_ROUNDS: decisions per paced reviewer (default 100, ~60 s).
# KILN_BENCH_API_ONLY=1: the API latency and RSS only (thumbnails kept from an earlier run).
# Each latency line also gives GET /api/session's p50/p99 measured in the same run, the
# baseline of a machine loaded by other work, and the decision's p99 over it.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
build=$(cd "${1:-$src/build}" && pwd)
N=${2:-10000}
R=${3:-200}
work=${TMPDIR:-/tmp}/kiln-bench-review-$N
mkdir -p "$work"
if [ ! -f "$work/proj/.kiln/catalog.db" ] || [ "$("$build/kiln" -C "$work/proj" ls --status rendered | wc -l)" -le "$N" ]; then
	echo "making $N tokens (once; kept in $work)..."
	[ -d "$work/layers" ] || /usr/bin/python3 "$src/../shared/peers/make_layers.py" "$work/layers" >/dev/null
	mkdir -p "$work/proj"
	"$build/kiln" -C "$work/proj" init --force --from-hashlips "$work/layers" \
		--order Background,Body,Eyes,Mouth,Hat,Accessory --size "$N" >/dev/null
	"$build/kiln" -C "$work/proj" plan -q >/dev/null
	"$build/kiln" -C "$work/proj" render -q
fi
db=$work/proj/.kiln/catalog.db
cc -O2 -o "$work/bench_client" "$here/bench_client.c" $(pkg-config --cflags --libs libcurl) -lpthread
# the images, as the store holds them
sqlite3 "$db" "select image from items where image is not null" |
	awk -v s="$work/proj/.kiln/store" '{print s "/" substr($1, 1, 2) "/" $1}' >"$work/images"
cat $(cat "$work/images") >/dev/null
cores=$(nproc)
[ "$cores" -le 8 ] || cores=8
api_only=${KILN_BENCH_API_ONLY:-0}
if [ "$api_only" = 0 ]; then
# vipsthumbnail on the same files, a process per core (as kiln's workers)
rm -rf "$work/vt" && mkdir -p "$work/vt"
t0=$(date +%s.%N)
VIPS_CONCURRENCY=1 xargs -P "$cores" -n 64 vipsthumbnail -s 512 -o "$work/vt/%s.webp[Q=80,strip]" <"$work/images"
t1=$(date +%s.%N)
vt=$(echo "$t1 - $t0" | bc)
# kiln review: every thumbnail made afresh
sqlite3 "$db" "delete from thumbs"
fi
"$build/kiln" -C "$work/proj" review >"$work/review.out" 2>"$work/review.err" &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 6000); do grep -q 'thumbnails ready' "$work/review.err" && break; sleep 0.1; done
kt=$(sed -n 's/.*thumbnails ready in \([0-9.]*\) s/\1/p' "$work/review.err")
url=$(sed -n 's/^review: //p' "$work/review.out")
token=${url##*token=}
port=$(echo "$url" | sed 's#^http://[^/]*:\([0-9]*\)/.*#\1#')
echo "tokens: $N (1024x1024 PNG); load: $(uptime | sed 's/.*load average/load average/') on $(nproc) cores"
if [ "$api_only" = 0 ]; then
{
echo "thumbnails (WebP 512 px, $cores threads): kiln review ${kt} s, vipsthumbnail ${vt} s"
awk -v k="$kt" -v v="$vt" 'BEGIN { r = k / v; printf "ratio kiln / vipsthumbnail: %.2fx (target <= 1): %s\n", r, r <= 1 ? "met" : "NOT met" }'
} | tee "$work/thumbs.txt"
elif [ -s "$work/thumbs.txt" ]; then
	# API only: the thumbnail figures of the last full run on these images, said as such
	sed 's/^/(last full run, '"$(date -r "$work/thumbs.txt" -u +%FT%TZ)"') /' "$work/thumbs.txt"
else
	echo "thumbnails: not measured in this run (KILN_BENCH_API_ONLY=1; run once without it)${kt:+; kiln review made the missing ones in $kt s}"
fi
echo "closed loop (stress):"
"$work/bench_client" "$port" "$token" "$N" 1 "$R" | head -1
out20=$("$work/bench_client" "$port" "$token" "$N" 20 "$R")
echo "$out20" | head -1
echo "paced (20 reviewers):"
outp=$("$work/bench_client" "$port" "$token" "$N" 20 "${KILN_BENCH_PACED_ROUNDS:-100}" 250 1000)
echo "$outp" | head -1
echo "$out20" | tail -1 | awk '{ printf "decision p99 with 20 clients, closed loop: %.2f ms (max %.2f ms)\n", $5, $8 }'
echo "$outp" | tail -1 | awk '{ printf "decision p99 with 20 paced reviewers: %.2f ms (max %.2f ms) (target < 20 ms): %s\n", $5, $8, $5 < 20 ? "met" : "NOT met" }'
echo "load after: $(uptime | sed 's/.*load average/load average/')"
rss=$(awk '/VmHWM/ {print $2}' /proc/$pid/status)
kill -TERM $pid
wait $pid
trap - EXIT
echo "server peak RSS: $((rss / 1024)) MiB (target < 200 MiB): $([ $((rss / 1024)) -lt 200 ] && echo met || echo NOT met)"
