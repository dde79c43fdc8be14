# kiln polish inpaint against the test server (A1111 img2img with a mask, ComfyUI
# VAEEncodeForInpaint) as a polish step on the token's CURRENT image: a mask of another size
# (the render's, when the current image is the x2 upscale) and an empty mask are refused; the
# result is an "inpaint" row of polish_steps (input, output, mask, prompt, denoise, engine,
# endpoint, seed), changed only where the mask is white, the token's image from then on; the
# spec's vectorize (listed after the upscale) is made on it; a second inpaint repaints the
# first's output; a reviewed token is pending again; release ships it, dist/polish/2.json
# shows the step, kiln verify passes, the portfolio log has it as a polish step.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ai_common.inc"
. "$(dirname "$0")/review_common.inc"
trap 'kill_review; stop_server' EXIT
export KILN_KEYS_DIR=$T/keys
"$KILN" keys init --studio example.com/ai-owls >/dev/null
start_server --protocol all
small='s/width: 512, height: 512/width: 64, height: 64/; s/size: 512x512/size: 64x64/; s/auth_env: KILN_GPU_AUTH,//'
q() { sqlite3 "$1/.kiln/catalog.db" "$2"; }
st() { echo "$1/.kiln/store/$(echo "$2" | cut -c1-2)/$2"; }
$PY - "$T" <<'PY' || fail "masks"
import sys
from PIL import Image
m = Image.new("L", (128, 128), 0)
m.paste(255, (20, 40, 60, 80))
m.save(sys.argv[1] + "/mask.png")
m = Image.new("L", (128, 128), 0)
m.paste(255, (70, 10, 100, 30))
m.save(sys.argv[1] + "/mask2.png")
Image.new("L", (64, 64), 255).save(sys.argv[1] + "/mask64.png")
Image.new("L", (128, 128), 0).save(sys.argv[1] + "/black.png")
PY
step() { # dir kind column [offset]
	q "$1" "select $3 from polish_steps where item_id = 2 and kind = '$2' order by step limit 1 offset ${4:-0}"
}

for engine in a1111 comfyui; do
	P=$T/$engine
	ai_owls "$P" $engine "$small"
	[ $engine = a1111 ] && printf 'portfolio: {enabled: true, prompts: hashed}\n' >>"$P/kiln.yaml"
	printf 'polish:\n  - upscale: {factor: 2, method: nearest}\n  - vectorize: {mode: pixels}\n' >>"$P/kiln.yaml"
	"$KILN" -C "$P" plan -q && "$KILN" -C "$P" render -q && "$KILN" -C "$P" polish -q ||
		fail "$engine plan/render/polish"
	r2=$(q "$P" "select image from items where id = 2")
	up=$(step "$P" upscale output)
	"$KILN" -C "$P" polish inpaint 2 --mask "$T/mask64.png" --prompt "a golden claw" >"$T/w.out" 2>&1
	expect_eq "$engine: a mask of the render's size" $? 2
	expect_contains "$engine: both sizes named" "$T/w.out" "the mask is 64x64 and the token's image is 128x128"
	"$KILN" -C "$P" polish inpaint 2 --mask "$T/black.png" --prompt "a golden claw" >"$T/w.out" 2>&1
	expect_eq "$engine: an empty mask" $? 2
	expect_contains "$engine: empty named" "$T/w.out" "the mask is empty"
	"$KILN" -C "$P" polish inpaint 2 --mask "$T/mask.png" --prompt "a golden claw" --denoise 0.6 \
		--json >"$T/$engine.json" 2>"$T/$engine.err"
	expect_eq "$engine: inpaint" $? 0
	cat "$T/$engine.err"
	i1=$(step "$P" inpaint output)
	expect_eq "$engine: json names the step" \
		"$($PY -c 'import sys, json; j = json.load(sys.stdin); print(j["input"], j["image"])' <"$T/$engine.json")" "$up $i1"
	expect_eq "$engine: the render stays the render" "$(q "$P" "select image from items where id = 2")" "$r2"
	expect_eq "$engine: no new render candidate" "$(q "$P" "select count(*) from renders where item_id = 2 and status = 'ok'")" 1
	expect_eq "$engine: the inpaint's input is the upscale" "$(step "$P" inpaint input)" "$up"
	check_masked "$engine: inpaint 1" "$(st "$P" "$up")" "$(st "$P" "$i1")" "$T/mask.png" 128
	mask=$(sha256sum <"$T/mask.png" | cut -c1-64)
	expect_eq "$engine: the step's settings" \
		"$(q "$P" "select json_extract(settings, '\$.mask') || ' ' || json_extract(settings, '\$.prompt') || ' ' || json_extract(settings, '\$.denoise') || ' ' || json_extract(settings, '\$.engine') || ' ' || (json_extract(settings, '\$.endpoint') like 'http://127.0.0.1:%') || ' ' || (json_extract(settings, '\$.seed') > 0) from polish_steps where item_id = 2 and kind = 'inpaint'")" \
		"$mask a golden claw 0.6 $engine 1 1"
	expect_eq "$engine: the mask stored by hash" "$(test -f "$(st "$P" "$mask")" && echo yes)" yes
	expect_eq "$engine: the vectorize is made on the inpaint" "$(step "$P" vectorize input)" "$i1"
	expect_eq "$engine: chain order" "$(q "$P" "select group_concat(kind, ',') from (select kind from polish_steps where item_id = 2 order by step)")" \
		"upscale,inpaint,vectorize"
	# a second inpaint repaints the first one's output (the current image)
	"$KILN" -C "$P" polish inpaint 2 --mask "$T/mask2.png" --prompt "a silver beak" >/dev/null 2>"$T/w.out"
	expect_eq "$engine: second inpaint" $? 0
	i2=$(step "$P" inpaint output 1)
	expect_eq "$engine: second inpaint reads the first" "$(step "$P" inpaint input 1)" "$i1"
	check_masked "$engine: inpaint 2" "$(st "$P" "$i1")" "$(st "$P" "$i2")" "$T/mask2.png" 128
	# polish again: nothing changes (the inpaints are kept in place)
	"$KILN" -C "$P" polish -q || fail "$engine: polish again"
	expect_eq "$engine: kept" "$(step "$P" inpaint output 1) $(step "$P" vectorize input)" "$i2 $i2"
done
# ComfyUI: the graph kiln sent
requests /prompt >"$T/c.req"
$PY - "$T/c.req" <<'PY' || fail "comfyui inpaint graph"
import json, sys
g = json.load(open(sys.argv[1]))[-1]["json"]["prompt"]
by = {n["class_type"]: n["inputs"] for n in g.values()}
assert by["LoadImageMask"]["channel"] == "red", by
assert by["VAEEncodeForInpaint"]["grow_mask_by"] == 6, by
PY

# review (A1111 project): an approved token inpainted is pending again; release ships the
# inpaint; the chain in dist/ shows it; kiln verify passes; the portfolio log has the step
P=$T/a1111
start_review "$P"
py_check approve "$KILN_SRC/tests/cli" <<'PY'
import sys
sys.path.insert(0, sys.argv[3])
from review_client import Client
o = Client(int(sys.argv[1]), sys.argv[2]); o.login()
r = o.post("/api/tokens/2/decision", {"action": "approve"})
PY
stop_review
expect_eq "approved" "$(q "$P" "select status from review_state where item_id = 2")" approved
"$KILN" -C "$P" polish inpaint 2 --mask "$T/mask.png" --prompt "a ruby eye" --denoise 0.4 >/dev/null 2>"$T/w.out"
expect_eq "third inpaint" $? 0
expect_eq "pending review again" "$(q "$P" "select status from review_state where item_id = 2")" pending
expect_eq "the reset names the inpaint" "$(q "$P" "select reviewer || ' ' || action || ' ' || (note like 'inpainted%') from review_log where item_id = 2 order by id desc limit 1")" "kiln reset 1"
final=$(step "$P" inpaint output 2)
# the example's legendary is drawn at 256 px: at the collection's 64 for QA's size check
vips resize "$P/legendaries/founder.png" "$T/f.png" 0.25 --kernel nearest && cp "$T/f.png" "$P/legendaries/founder.png"
"$KILN" -C "$P" build -q >"$T/b.out" 2>&1 || { cat "$T/b.out"; fail "build"; }
$PY - "$(st "$P" "$final")" "$P/dist/images/2.png" <<'PY' || fail "released pixels are the inpaint's"
import sys
from PIL import Image
c, d = Image.open(sys.argv[1]).convert("RGBA"), Image.open(sys.argv[2]).convert("RGBA")
assert d.size == (128, 128) and d.tobytes() == c.tobytes()
PY
$PY - "$P/dist/polish/2.json" "$final" <<'PY' || fail "dist/polish/2.json"
import json, sys
j = json.load(open(sys.argv[1]))
kinds = [s["kind"] for s in j["steps"]]
assert kinds == ["upscale", "inpaint", "inpaint", "inpaint", "vectorize"], kinds
ins = [s for s in j["steps"] if s["kind"] == "inpaint"]
assert ins[-1]["output"] == sys.argv[2], ins
assert ins[1]["input"] == ins[0]["output"] and ins[2]["input"] == ins[1]["output"], ins
PY
"$KILN" verify "$P/dist" >"$T/v" 2>&1
expect_eq "kiln verify ($(grep -v '^OK' "$T/v" | head -3))" $? 0
expect_eq "released disclosure" "$(exiftool -s3 -XMP-iptcExt:DigitalSourceType "$P/dist/images/2.png")" \
	http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia
grep -rl '"inpaint"' "$P/dist" --include='*.json*' | grep -v '/polish/' >"$T/logs"
expect_eq "the portfolio log has the inpaint steps" "$(test -s "$T/logs" && echo yes)" yes
# prompts: hashed: the inpaint prompts are published as commitments only, nowhere as text
expect_eq "no inpaint prompt text in dist/" "$(grep -rla 'a ruby eye' "$P/dist" | head -3)" ""
expect_eq "the portfolio log commits to it" \
	"$(grep -rlaF "sha256:$(printf 'a ruby eye' | sha256sum | cut -c1-64)" "$P/dist/portfolio" | head -1 | grep -c .)" 1
"$KILN" -C "$P" show 2 >"$T/show" 2>&1
expect_contains "kiln show lists the inpaint" "$T/show" "inpaint"
finish
