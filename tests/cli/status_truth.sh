#!/bin/sh
# issue 18 items 1, 2 and 9: `kiln status` and `kiln release` say which tokens QA has not
# judged, judged on an image since replaced, or fails, and the command that fixes it ("next
# nothing" only when every token is checked and released); QA verdicts about another plan
# block nothing; `kiln build` notices a damaged dist/ and writes it again.
. "$(dirname "$0")/lib.sh"
P=$T/owls
owls "$P"
next() { "$KILN" -C "$P" status --json | $PY -c "import json, sys; print(json.load(sys.stdin)['next'])"; }
qa() { "$KILN" -C "$P" status --json | $PY -c "import json, sys; q = json.load(sys.stdin)['qa']; print(q['$1'])"; }

# 1. released without QA: status and release say so
"$KILN" -C "$P" build --no-qa -q 2>"$T/err"
expect_eq "build --no-qa" $? 0
expect_contains "the release says QA has not judged its tokens" "$T/err" \
	"60 released tokens QA has not judged (first: 1, 2, 3, 4, 5, ...): run \`kiln qa\`"
"$KILN" -C "$P" status >"$T/st"
expect_contains "status counts the unchecked tokens" "$T/st" "not run yet: 60 rendered tokens unchecked"
expect_contains "and says to run qa" "$T/st" "next       kiln qa (60 tokens QA has not judged, released)"
expect_eq "json: unchecked" "$(qa unchecked_tokens)" 60
expect_eq "json: the first ids" "$(qa first_unchecked)" "[1, 2, 3, 4, 5]"
"$KILN" -C "$P" qa -q
expect_eq "qa passes" $? 0
expect_eq "then nothing is left" "$(next)" \
	"nothing: every token is checked and released (after changes, \`kiln build\`)"

# a token re-rendered after QA (no findings before): a stale verdict, not "nothing"
cp "$P/layers/Background/mint.png" "$T/mint.png"
cp "$P/layers/Background/dawn.png" "$P/layers/Background/mint.png"
"$KILN" -C "$P" render -q
n=$(qa stale_tokens)
[ "$n" -gt 0 ] && ok || fail "re-rendered tokens are not counted as stale ($n)"
"$KILN" -C "$P" status >"$T/st"
expect_contains "status names them" "$T/st" "stale verdict"
case "$(next)" in "kiln qa ("*"re-rendered since)") ok ;; *) fail "next after a re-render: $(next)" ;; esac
# tokens QA fails (a hat drawn as a black square over the whole owl), released anyway
cp "$P/layers/Hat/halo.png" "$T/halo.png"
$PY -c "
from PIL import Image
im = Image.open('$T/halo.png')
Image.new('RGBA', im.size, (0, 0, 0, 255)).save('$P/layers/Hat/halo.png')"
"$KILN" -C "$P" build --no-qa -q 2>"$T/err"
"$KILN" -C "$P" qa -q
expect_eq "qa fails the black tokens" $? 1
"$KILN" -C "$P" status >"$T/st"
expect_contains "status: the failing tokens" "$T/st" "failed QA (first: "
case "$(next)" in "fix the "*" tokens that fail QA (first: "*"then \`kiln build\`"*) ok ;; *) fail "next with failing tokens: $(next)" ;; esac
"$KILN" -C "$P" release --allow-qa-failures --force -q 2>"$T/err"
expect_eq "released anyway" $? 0
expect_contains "release reports the failing tokens it released" "$T/err" "released tokens fail QA (first: "
cp "$T/halo.png" "$P/layers/Hat/halo.png"
cp "$T/mint.png" "$P/layers/Background/mint.png"
"$KILN" -C "$P" build -q --no-qa 2>/dev/null

# 2. QA before the plan: its collection findings are about no plan and block nothing
Q=$T/early
owls "$Q"
"$KILN" -C "$Q" qa -q
"$KILN" -C "$Q" plan -q && "$KILN" -C "$Q" render -q
"$KILN" -C "$Q" status --json >"$T/q.json"
expect_contains "status: the old findings are stale" "$T/q.json" '"stale_collection_errors": 22'
expect_contains "status: and not next kiln release" "$T/q.json" '"next": "kiln qa (60 tokens'
"$KILN" -C "$Q" release -q 2>"$T/err"
expect_eq "release is not blocked by findings about another plan" $? 0

# 8. a layer file replaced by an unusable one after the build: status names it, next fixes it
cp "$P/layers/Background/dawn.png" "$T/dawn.png"
$PY - "$P/layers/Background/dawn.png" <<'PY'
import struct, sys, zlib
def chunk(k, d):
    return struct.pack(">I", len(d)) + k + d + struct.pack(">I", zlib.crc32(k + d) & 0xffffffff)
raw = b"".join(b"\0" + b"\0" * 64 for _ in range(16))
open(sys.argv[1], "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 16, 16, 8, 6, 0, 0, 0))
                             + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
PY
"$KILN" -C "$P" status >"$T/st"
expect_contains "status: the bad layer file" "$T/st" "layers/Background/dawn.png: is 16x16"
expect_contains "status: next fixes it" "$T/st" "next       fix the layer files named above"
"$KILN" -C "$P" status --json >"$T/stj"
expect_contains "status --json: the bad layer file" "$T/stj" '"layer_files_error": "layers/Background/dawn.png: is 16x16'
cp "$T/dawn.png" "$P/layers/Background/dawn.png"

# 9. a damaged dist/ is noticed and written again
"$KILN" -C "$P" build -q
cp "$P/dist/images/2.png" "$P/dist/images/3.png"
"$KILN" -C "$P" status >"$T/st"
expect_contains "status: dist/ is damaged" "$T/st" "dist/ is damaged: 1 file differs from the release (images/3.png changed"
"$KILN" -C "$P" build >"$T/out" 2>&1
expect_eq "build after damage" $? 0
expect_contains "build says it repaired dist/" "$T/out" "dist/ differed from the release (1 file: images/3.png"
"$KILN" verify "$P/dist" >"$T/v" 2>&1
expect_eq "the rewritten dist/ verifies" $? 0
rm "$P/dist/metadata/5.json"
echo x >"$P/dist/notes.txt"
"$KILN" -C "$P" release >"$T/out" 2>&1
expect_contains "a missing file is written again" "$T/out" "(2 files: metadata/5.json is missing)"
[ -f "$P/dist/metadata/5.json" ] && ok || fail "metadata/5.json not rewritten"
touch "$P/dist/images/4.png"
"$KILN" -C "$P" build >"$T/out" 2>&1
expect_contains "a touched but intact file is no damage" "$T/out" "dist is up to date"
finish
