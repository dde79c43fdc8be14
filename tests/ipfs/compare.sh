#!/bin/sh
# Compare kiln's IPFS CIDs and CARs with the npm oracle (ipfs-unixfs-importer + @ipld/car).
#
#   sh tests/ipfs/compare.sh            # uses the build in $KILN_BUILD (default build-ipfs)
#   SANITIZE=1 KILN_BUILD=build-asan sh tests/ipfs/compare.sh   # libkiln built with KILN_SANITIZE=ON
#   IPFS_HUGE=1 sh tests/ipfs/compare.sh   # also a 7.9 GB file (a three-level DAG)
#
# Every case is a folder built here; both tools import it and print "<cid> <path>" for every
# file and folder; the lists must be equal. The CARs must be byte-identical where kiln's block
# order is the importer's (flat folders); for nested folders the block order differs by design
# (docs/ipfs.md), so there the roots and the sets of blocks must be equal.
# Prints "N passed, N failed" and exits non-zero on any failure.
set -u
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
build=${KILN_BUILD:-$src/build-ipfs}
case $build in /*) ;; *) build=$src/$build ;; esac
work=${IPFS_CMP_TMP:-$(mktemp -d /tmp/kiln-ipfs-cmp.XXXXXX)}
mkdir -p "$work"
pass=0
fail=0

die() { echo "compare.sh: $*" >&2; exit 2; }

[ -f "$build/libkiln.a" ] || die "no $build/libkiln.a; build first: cmake -S $src -B $build && cmake --build $build --target kiln"
command -v node >/dev/null || die "node is not installed"
if [ ! -d "$here/node_modules/ipfs-unixfs-importer" ]; then
	(cd "$here" && npm ci --no-audit --no-fund >/dev/null) || die "npm ci failed in $here"
fi

cflags="-O2 -g -Wall -Wextra"
if [ "${SANITIZE:-0}" = 1 ]; then
	cflags="$cflags -fsanitize=address,undefined -fno-omit-frame-pointer"
	export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
	export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
fi
tool=$work/kiln_ipfs_tool
# shellcheck disable=SC2046
cc $cflags -I"$src/include" -I"$src/lib" -o "$tool" "$here/kiln_ipfs_tool.c" "$build/libkiln.a" \
	$(pkg-config --cflags --libs vips libfyaml jansson sqlite3 libcurl libmicrohttpd libcrypto imagequant libdeflate zlib libpng16) \
	-lpthread -lm || die "cannot compile kiln_ipfs_tool"

# ---- test folders ----
data=$work/data
rm -rf "$data"
mkdir -p "$data"
rand=$work/random.bin
# 2*174 chunks and a bit of random bytes, the source for every sized file
head -c $((2 * 174 * 262144 + 4096)) /dev/urandom > "$rand"

mkfile() { head -c "$2" "$rand" > "$1"; }

# files of sizes around the chunk and node boundaries
mkdir "$data/sizes"
for n in 0 1 262143 262144 262145 524288 $((174 * 262144)) $((174 * 262144 + 1)) \
	$((2 * 174 * 262144 + 7)); do
	mkfile "$data/sizes/f_$n" "$n"
done

# metadata folders: 0.json .. N-1.json (5,000 stays flat, 10,000 becomes a HAMT)
for N in 1 5000 10000; do
	mkdir "$data/json$N"
	(cd "$data/json$N" && i=0 && while [ $i -lt $N ]; do
		printf '{"name":"Token #%d","image":"ipfs://cid/%d.png","attributes":[]}' $i $i > $i.json
		i=$((i + 1))
	done)
done

# the threshold itself: 4096 names of 28 bytes => estimate 4096 * (28 + 36) = 262144, flat;
# one name a byte longer => 262145, a HAMT
mkdir "$data/at_threshold" "$data/past_threshold"
(cd "$data/at_threshold" && i=0 && while [ $i -lt 4096 ]; do
	printf '%d' $i > "$(printf '%024d.png' $i)"; i=$((i + 1)); done)
cp -r "$data/at_threshold/." "$data/past_threshold/"
mv "$data/past_threshold/$(printf '%024d.png' 7)" "$data/past_threshold/$(printf '%025d.png' 7)"

# images: 1 MiB files, with duplicates (a CAR holds a block once)
mkdir "$data/images"
i=0
while [ $i -lt 24 ]; do
	head -c 1048576 /dev/urandom > "$data/images/$i.png"
	i=$((i + 1))
done
cp "$data/images/3.png" "$data/images/dup_of_3.png"
: > "$data/images/empty.png"

# nested folders, an empty folder, hidden files (skipped), names that sort bytewise
mkdir -p "$data/nested/a/b/c" "$data/nested/empty" "$data/nested/Z" "$data/nested/.git"
printf 'x' > "$data/nested/a/one"
printf 'y' > "$data/nested/a/b/two"
printf 'z' > "$data/nested/a/b/c/three"
printf 'hidden' > "$data/nested/.hidden"
printf 'git' > "$data/nested/.git/HEAD"
printf 'u' > "$data/nested/Z/é.json"
printf 'v' > "$data/nested/Z/e.json"
printf 'w' > "$data/nested/Z/E.json"
printf 'hello world' > "$data/nested/hello.txt"
mkfile "$data/nested/a/big" $((174 * 262144 + 1))
mkdir "$data/nested/json10000" && cp -r "$data/json10000/." "$data/nested/json10000/"

if [ "${IPFS_HUGE:-0}" = 1 ]; then
	mkdir "$data/huge"
	# 174*174 chunks + 1: a three-level DAG (the importer orders its blocks differently)
	(i=0; while [ $i -lt 175 ]; do head -c $((174 * 262144)) "$rand"; i=$((i + 1)); done) |
		head -c $((174 * 174 * 262144 + 1)) > "$data/huge/f"
fi

# ---- compare ----
check() { # name exact|set
	name=$1
	mode=$2
	d=$data/$name
	o=$work/$name.oracle
	k=$work/$name.kiln
	if ! node "$here/oracle.mjs" --car "$o.car" "$d" > "$o.out"; then
		echo "FAIL $name: oracle failed"; fail=$((fail + 1)); return
	fi
	if ! "$tool" --car "$k.car" "$d" > "$k.out"; then
		echo "FAIL $name: kiln_ipfs_tool failed"; fail=$((fail + 1)); return
	fi
	sort -k2 "$o.out" > "$o"
	sort -k2 "$k.out" > "$k"
	root=$(grep " $name\$" "$k" | cut -d' ' -f1)
	if ! diff "$o" "$k" > "$work/$name.diff"; then
		echo "FAIL $name: CIDs differ (see $work/$name.diff)"; fail=$((fail + 1)); return
	fi
	tree_root=$("$tool" --tree "$d" | cut -d' ' -f1)
	if [ "$tree_root" != "$root" ]; then
		echo "FAIL $name: kiln_ipfs_import_tree gives $tree_root, the walk $root"; fail=$((fail + 1)); return
	fi
	# read both CARs back (every block is hashed and checked against its CID)
	if ! node "$here/oracle.mjs" --ls-car "$o.car" > "$o.blocks" ||
		! node "$here/oracle.mjs" --ls-car "$k.car" > "$k.blocks"; then
		echo "FAIL $name: a CAR does not read back"; fail=$((fail + 1)); return
	fi
	if [ "$(head -n 1 "$k.blocks")" != "roots $root" ]; then
		echo "FAIL $name: kiln's CAR root is not $root"; fail=$((fail + 1)); return
	fi
	if cmp -s "$o.car" "$k.car"; then
		how="CAR byte-identical"
	elif [ "$mode" = exact ]; then
		echo "FAIL $name: CARs differ"; fail=$((fail + 1)); return
	else
		sort "$o.blocks" > "$o.sorted"
		sort "$k.blocks" > "$k.sorted"
		if ! cmp -s "$o.sorted" "$k.sorted"; then
			echo "FAIL $name: CARs hold different blocks or roots"; fail=$((fail + 1)); return
		fi
		how="CAR same root and blocks, other order"
	fi
	blocks=$(($(wc -l < "$k.blocks") - 1))
	echo "ok   $name: $(wc -l < "$k") CIDs equal, root $root ($(node "$here/oracle.mjs" --root-type "$k.car"), $blocks blocks), $how"
	pass=$((pass + 1))
}

check sizes exact
check json1 exact
check json5000 exact
check json10000 exact
check at_threshold exact
check past_threshold exact
check images exact
check nested set
[ "${IPFS_HUGE:-0}" = 1 ] && check huge set

# the threshold cases must straddle it: a flat Directory at 262144, a HAMT shard past it
t1=$(node "$here/oracle.mjs" --root-type "$work/at_threshold.kiln.car" 2>/dev/null)
t2=$(node "$here/oracle.mjs" --root-type "$work/past_threshold.kiln.car" 2>/dev/null)
if [ "$t1" = directory ] && [ "$t2" = hamt-sharded-directory ]; then
	echo "ok   threshold: estimate 262144 stays a directory, 262145 is a HAMT"; pass=$((pass + 1))
else
	echo "FAIL threshold: at 262144 '$t1', at 262145 '$t2'"; fail=$((fail + 1))
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ] && [ -z "${IPFS_CMP_KEEP:-}" ] && [ -z "${IPFS_CMP_TMP:-}" ] && rm -rf "$work"
[ "$fail" -eq 0 ]
