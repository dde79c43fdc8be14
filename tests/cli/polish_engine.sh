# Polish upscale method engine, end to end through the test server: A1111/Forge
# POST /sdapi/v1/extra-single-image and a ComfyUI graph (LoadImage -> UpscaleModelLoader ->
# ImageUpscaleWithModel -> ImageScaleBy -> SaveImage). The server's upscale is a nearest
# resize, so the saved output must equal the render resized x2 nearest (PIL), with kiln's XMP;
# a second run makes nothing; a kill -9 while ComfyUI runs the job, then a rerun, collects the
# prompt (polled by its id) instead of sending it again; sd-server is refused naming it.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ai_common.inc"
start_server --protocol all
small='s/width: 512, height: 512/width: 64, height: 64/; s/size: 512x512/size: 64x64/; s/auth_env: KILN_GPU_AUTH,//'
q() { sqlite3 "$1/.kiln/catalog.db" "$2"; }
st() { echo "$1/.kiln/store/$(echo "$2" | cut -c1-2)/$2"; }
nreq() { requests "$1" | $PY -c "import sys, json; print(len(json.load(sys.stdin)))"; }
# the engine outputs of tokens 1-3 are the renders x2 nearest (pixels), 128 px, trained XMP
check_outputs() { # dir factor
	for i in 1 2 3; do
		out=$(q "$1" "select output from polish_steps where item_id = $i and kind = 'upscale'")
		ren=$(q "$1" "select image from items where id = $i")
		[ -n "$out" ] || { fail "$1: no upscale step for token $i"; continue; }
		$PY - "$(st "$1" "$out")" "$(st "$1" "$ren")" "$2" <<'PY' || fail "$1 token $i pixels"
import sys
from PIL import Image
o, r, f = Image.open(sys.argv[1]).convert("RGB"), Image.open(sys.argv[2]).convert("RGB"), int(sys.argv[3])
assert o.size == (64 * f, 64 * f), o.size
assert o.tobytes() == r.resize(o.size, Image.NEAREST).tobytes()
PY
		expect_eq "$1 token $i disclosure" "$(exiftool -s3 -XMP-iptcExt:DigitalSourceType "$(st "$1" "$out")")" \
			http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia
	done
}

# --- A1111 ---
P=$T/a
ai_owls "$P" a1111 "$small"
printf 'polish:\n  - upscale: {factor: 2, method: engine, upscaler: "R-ESRGAN 4x+"}\n' >>"$P/kiln.yaml"
"$KILN" -C "$P" plan -q && "$KILN" -C "$P" render -q || fail "a1111 plan/render"
"$KILN" -C "$P" polish 1 2 3 >"$T/a.out" 2>&1
expect_eq "a1111 polish" $? 0
expect_contains "a1111 summary" "$T/a.out" "3 tokens polished (3 steps made)"
check_outputs "$P" 2
requests /sdapi/v1/extra-single-image >"$T/a.req"
$PY - "$T/a.req" <<'PY' || fail "a1111 request body"
import json, sys
r = json.load(open(sys.argv[1]))
assert len(r) == 3, len(r)
j = r[0]["json"]
assert j["upscaler_1"] == "R-ESRGAN 4x+" and j["upscaling_resize"] == 2 and j["resize_mode"] == 0, j
PY
"$KILN" -C "$P" show 1 >"$T/a.show"
expect_contains "show lists the engine step" "$T/a.show" "extra-single-image R-ESRGAN 4x+"
"$KILN" -C "$P" polish 1 2 3 >"$T/a2.out" 2>&1
expect_eq "a1111 rerun" $? 0
expect_contains "a1111 rerun makes nothing" "$T/a2.out" "nothing to do"
expect_eq "no request on rerun" "$(nreq /sdapi/v1/extra-single-image)" 3
# an upscaler the server does not list: refused before anything is sent, naming it
sed -i 's/upscaler: "R-ESRGAN 4x+"/upscaler: "R-ESRGAN 9x"/' "$P/kiln.yaml"
"$KILN" -C "$P" polish 4 >"$T/a3.out" 2>&1
expect_eq "unknown upscaler: a spec error" $? 2
expect_contains "unknown upscaler named" "$T/a3.out" "has no upscaler \`R-ESRGAN 9x\`; it has: R-ESRGAN 4x+"
expect_eq "nothing sent for it" "$(nreq /sdapi/v1/extra-single-image)" 3

# --- ComfyUI: a 4x model brought to x2 by ImageScaleBy ---
C=$T/c
ai_owls "$C" comfyui "$small"
printf 'polish:\n  - upscale: {factor: 2, method: engine, upscaler: RealESRGAN_x4plus.pth}\n' >>"$C/kiln.yaml"
"$KILN" -C "$C" plan -q && "$KILN" -C "$C" render -q || fail "comfyui plan/render"
before=$(nreq /prompt)
"$KILN" -C "$C" polish 1 2 3 >"$T/c.out" 2>&1
expect_eq "comfyui polish" $? 0
cat "$T/c.out" | grep -v "^polish:" || true
check_outputs "$C" 2
requests /prompt >"$T/c.req"
$PY - "$T/c.req" <<'PY' || fail "comfyui graph"
import json, sys
g = json.load(open(sys.argv[1]))[-1]["json"]["prompt"]
by = {n["class_type"]: n["inputs"] for n in g.values()}
assert by["UpscaleModelLoader"]["model_name"] == "RealESRGAN_x4plus.pth", by
assert by["ImageScaleBy"]["scale_by"] == 0.5, by
assert "KSampler" not in by and set(by) == {"LoadImage", "UpscaleModelLoader",
    "ImageUpscaleWithModel", "ImageScaleBy", "SaveImage"}, by
PY
expect_eq "comfyui: 3 prompts" $(($(nreq /prompt) - before)) 3
"$KILN" -C "$C" polish 1 2 3 >"$T/c2.out" 2>&1
expect_contains "comfyui rerun makes nothing" "$T/c2.out" "nothing to do"

# kill -9 while the server runs the job, then a rerun: the prompt is collected, not resent
sed -i 's/factor: 2, method: engine/factor: 4, method: engine/' "$C/kiln.yaml"
config '{"latency_ms": 1500}'
before=$(nreq /prompt)
"$KILN" -C "$C" polish 5 >"$T/k.out" 2>&1 &
kp=$!
for _ in $(seq 100); do
	[ "$(q "$C" "select count(*) from ai_inflight where seed >= 1099511627776" 2>/dev/null)" = 1 ] && break
	sleep 0.05
done
sleep 0.3
kill -9 $kp; wait $kp 2>/dev/null
expect_eq "killed with the job in flight" "$(q "$C" "select count(*) from ai_inflight where seed >= 1099511627776")" 1
expect_eq "no chain recorded yet" "$(q "$C" "select count(*) from polish_steps where item_id = 5")" 0
"$KILN" -C "$C" polish 5 >"$T/k2.out" 2>&1
expect_eq "rerun after kill" $? 0
config '{"latency_ms": 0}'
expect_eq "the prompt was sent once" $(($(nreq /prompt) - before)) 1
expect_eq "x4 output" "$(vipsheader -f width "$(st "$C" "$(q "$C" "select output from polish_steps where item_id = 5")")")" 256
expect_eq "in-flight row gone" "$(q "$C" "select count(*) from ai_inflight where seed >= 1099511627776")" 0

# --- sd-server: no upscale route, refused naming the endpoint ---
S=$T/s
cp -r "$P" "$S"
sed -i "s#- {url: \"$U\",#- {url: \"$U\", engine: sdcpp,#; s/, guidance_end: 0.8//; /^  checkpoint:/d" "$S/kiln.yaml"
"$KILN" -C "$S" polish 1 >"$T/s.out" 2>&1
expect_eq "sd-server refused" $? 2
expect_contains "sd-server named" "$T/s.out" "$U (sdcpp): sd-server has no upscale or inpaint route"
finish
