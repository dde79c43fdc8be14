# A polished AI collection released with the portfolio's `prompts: hashed`: each released PNG is
# the polish chain's final image without its prompt text chunks, plus its C2PA caBX chunk.
# lib/polish's own check (through kiln verify) strips the store's final image the same way and
# accepts those bytes, or, in a copy without the store, follows the published log's
# prompt.redacted entry; a changed byte in a released image is still reported (issue 14).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ai_common.inc"
export KILN_KEYS_DIR=$T/keys
"$KILN" keys init --studio example.com/ai-owls >/dev/null
start_server --protocol a1111 --auth owl:hoot
export KILN_GPU_AUTH=owl:hoot
P=$T/ai
ai_owls "$P" a1111 's/prompt: "pixel art owl/prompt: "quokkagraph pixel art owl/'
printf 'portfolio: {enabled: true, prompts: hashed}\npolish: [{upscale: {factor: 2, method: nearest}}]\n' >>"$P/kiln.yaml"
"$KILN" -C "$P" plan -q >/dev/null 2>&1
"$KILN" -C "$P" build -q --no-qa >"$T/out" 2>&1
expect_eq "build ($(tail -2 "$T/out"))" $? 0
grep -l quokkagraph "$P"/dist/images/* >"$T/leak" 2>/dev/null
expect_eq "no prompt text in the released images" "$(wc -l <"$T/leak")" 0
"$KILN" verify "$P/dist" >"$T/v" 2>&1
expect_eq "kiln verify of polished, redacted, signed images ($(grep -v '^OK' "$T/v" | head -3))" $? 0
grep -c '^MISMATCH polish/' "$T/v" >"$T/n"
expect_eq "no polish chain mismatch" "$(cat "$T/n")" 0
# an outsider's copy (no project store beside it): the log's prompt.redacted entries link them
mkdir -p "$T/outside"
cp -r "$P/dist" "$T/outside/dist"
"$KILN" verify "$T/outside/dist" >"$T/vo" 2>&1
expect_eq "kiln verify of a copy without the store ($(grep -v '^OK' "$T/vo" | head -3))" $? 0
# one byte of a released image changed: reported
f=$(ls "$P"/dist/images/*.png | head -1)
$PY - "$f" <<'PY'
import sys
b = bytearray(open(sys.argv[1], "rb").read())
b[-20] ^= 1
open(sys.argv[1], "wb").write(b)
PY
"$KILN" verify "$P/dist" >"$T/v2" 2>&1
expect_eq "a changed image fails verify" $? 1
expect_contains "the polish chain names it" "$T/v2" "polish/$(basename "$f" .png).json"
finish
