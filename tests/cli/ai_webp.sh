# AI engines honour image.format: with format: webp the images a server sends as PNG are stored
# and released as WebP (RIFF....WEBP), encoded as compose encodes, with the AI disclosure XMP
# in the file; ComfyUI's upload goes out as multipart/form-data (the strict test server refuses
# anything else), and its saved image is taken over a preview.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ai_common.inc"
start_server --protocol comfyui
P=$T/p
ai_owls "$P" comfyui 's/, auth_env: KILN_GPU_AUTH//; s/format: png/format: webp, quality: 80, lossless: false/'
# a preview node beside SaveImage: /history lists both, kiln must fetch the saved one
$PY - "$P/owl_workflow.json" <<'PY'
import json, sys
g = json.load(open(sys.argv[1]))
g = {"10": {"class_type": "PreviewImage", "inputs": {"images": ["8", 0]}}, **g}
json.dump(g, open(sys.argv[1], "w"))
PY
"$KILN" -C "$P" plan -q || fail plan
"$KILN" -C "$P" render -q 2>"$T/err"
expect_eq "render exit" $? 0
cat "$T/err" | head -5
"$KILN" -C "$P" release -q 2>"$T/release.err"
expect_eq "release exit" $? 0
$PY - "$P" <<'PY' >"$T/check" 2>&1
import glob, json, sys
p = sys.argv[1]
files = sorted(glob.glob(p + "/dist/images/*"))
assert len(files) == 60 and all(f.endswith(".webp") for f in files), files[:3]
gen = 0
for f in files:
    b = open(f, "rb").read()
    assert b[:4] == b"RIFF" and b[8:12] == b"WEBP", (f, b[:16])
    if b"trainedAlgorithmicMedia" in b:
        assert b"XMP " in b, f            # the XMP chunk of an extended WebP
        gen += 1
assert gen == 59, gen                     # every generated image (not the legendary)
print("ok")
PY
expect_contains "released AI images are WebP with the XMP" "$T/check" ok
grep -v '^ok$' "$T/check" | head -5
# the images fetched were the SaveImage outputs, never the previews
requests /view | $PY -c '
import sys, json
views = json.load(sys.stdin)
assert views and all("type=output" in r["query"] for r in views), [r["query"] for r in views][:3]
print("ok")' >"$T/views" 2>&1
expect_contains "saved images, not previews" "$T/views" ok
expect_eq "control images uploaded as forms" "$(stats | $PY -c 'import sys,json; print(json.load(sys.stdin)["uploads"] > 0)')" True
"$KILN" -C "$P" verify -q >"$T/verify" 2>&1
expect_eq "verify" $? 0
finish
