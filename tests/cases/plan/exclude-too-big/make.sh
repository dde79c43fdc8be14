#!/bin/sh
# create the layer files kiln.yaml names (the spec loader only checks that they exist)
set -eu
grep -o "file: *[^,}]*" kiln.yaml | sed "s/file: *//" | while read -r f; do
  mkdir -p "$(dirname "$f")" && touch "$f"
done
