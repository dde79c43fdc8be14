#!/bin/sh
# `make demo`: build the bundled example collection (60 Pixel Owls) from its kiln.yaml into
# a scratch copy, and show what came out. Runs in a few seconds.
set -eu
KILN=${1:-build/kiln}
case "$KILN" in /*) ;; *) KILN="$PWD/$KILN" ;; esac
SRC=$(cd "$(dirname "$0")" && pwd)/owls
OUT=${DEMO_DIR:-$PWD/build/demo/owls}
mkdir -p "$OUT"
# the artist's inputs; .kiln/ and dist/ stay between runs, so a second `make demo` is a no-op
cp "$SRC/kiln.yaml" "$OUT/"
cp -r "$SRC/layers" "$SRC/legendaries" "$OUT/"
echo "== kiln build (project: $OUT)"
"$KILN" -C "$OUT" build
echo
echo "== kiln qa (the gates; near-duplicate owls are warnings)"
"$KILN" -C "$OUT" qa --html "$OUT/qa-report" | tail -3
echo
echo "== kiln verify (recomputes hashes, provenance and CIDs from dist/ alone)"
"$KILN" verify "$OUT/dist" | head -2
echo
echo "== kiln status"
"$KILN" -C "$OUT" status
echo
echo "== kiln ls (first 5)"
"$KILN" -C "$OUT" ls | head -6
echo
echo "== dist/metadata/1.json"
cat "$OUT/dist/metadata/1.json"
echo
echo "dist/ is at $OUT/dist: $(ls "$OUT/dist/images" | wc -l) images, $(ls "$OUT/dist/metadata" | wc -l) metadata files."
