# kiln polish inpaint against the test server (A1111 img2img with a mask, ComfyUI
# VAEEncodeForInpaint): a mask of another size is refused naming both sizes; the results are
# new candidates of the token (renders), changed only where the mask is white, with the
# request naming the input and the mask by SHA-256; review lists them and picks one; the
# release ships the picked one (through the polish chain: an x2 nearest upscale).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ai_common.inc"
. "$(dirname "$0")/review_common.inc"
trap 'kill_review; stop_server' EXIT
start_server --protocol all
small='s/width: 512, height: 512/width: 64, height: 64/; s/size: 512x512/size: 64x64/; s/auth_env: KILN_GPU_AUTH,//'
q() { sqlite3 "$1/.kiln/catalog.db" "$2"; }
st() { echo "$1/.kiln/store/$(echo "$2" | cut -c1-2)/$2"; }
$PY - "$T" <<'PY' || fail "masks"
import sys
from PIL import Image
m = Image.new("L", (64, 64), 0)
m.paste(255, (10, 20, 30, 40))
m.save(sys.argv[1] + "/mask.png")
Image.new("L", (32, 32), 255).save(sys.argv[1] + "/mask32.png")
PY
# the candidates of token 2 differ from its render exactly inside the mask
check_masked() { # dir render candidate...
	d=$1 r=$2
	shift 2
	for c in "$@"; do
		$PY - "$(st "$d" "$r")" "$(st "$d" "$c")" "$T/mask.png" <<'PY' || fail "$d: candidate $c pixels"
import sys
from PIL import Image
r, c, m = (Image.open(p) for p in sys.argv[1:4])
r, c, m = r.convert("RGB"), c.convert("RGB"), m.convert("L")
assert c.size == r.size == (64, 64), c.size
changed = inside = 0
for y in range(64):
    for x in range(64):
        if m.getpixel((x, y)) >= 128:
            inside += 1
            changed += c.getpixel((x, y)) != r.getpixel((x, y))
        else:
            assert c.getpixel((x, y)) == r.getpixel((x, y)), (x, y)
assert changed > inside // 2, (changed, inside)
PY
	done
}

for engine in a1111 comfyui; do
	P=$T/$engine
	ai_owls "$P" $engine "$small"
	printf 'polish:\n  - upscale: {factor: 2, method: nearest}\n' >>"$P/kiln.yaml"
	"$KILN" -C "$P" plan -q && "$KILN" -C "$P" render -q || fail "$engine plan/render"
	r2=$(q "$P" "select image from items where id = 2")
	"$KILN" -C "$P" polish inpaint 2 --mask "$T/mask32.png" --prompt "a golden claw" >"$T/w.out" 2>&1
	expect_eq "$engine: a mask of another size" $? 2
	expect_contains "$engine: both sizes named" "$T/w.out" "the mask is 32x32 and the token's image is 64x64"
	"$KILN" -C "$P" polish inpaint 2 --mask "$T/mask.png" --prompt "a golden claw" --denoise 0.6 \
		--candidates 2 --json >"$T/$engine.json" 2>"$T/$engine.err"
	expect_eq "$engine: inpaint" $? 0
	cat "$T/$engine.err"
	c1=$(q "$P" "select image from renders where item_id = 2 and status = 'ok' order by id limit 1 offset 1")
	c2=$(q "$P" "select image from renders where item_id = 2 and status = 'ok' order by id limit 1 offset 2")
	expect_eq "$engine: json names the candidates" \
		"$($PY -c 'import sys, json; print(",".join(json.load(sys.stdin)["candidates"]))' <"$T/$engine.json")" "$c1,$c2"
	check_masked "$P" "$r2" "$c1" "$c2"
	mask=$(sha256sum <"$T/mask.png" | cut -c1-64)
	expect_eq "$engine: the mask stored by hash" "$(test -f "$(st "$P" "$mask")" && echo yes)" yes
	[ $engine = a1111 ] && expect_eq "a1111: request names input and mask" \
		"$(q "$P" "select json_extract(request, '\$.init_images[0]') || ' ' || json_extract(request, '\$.mask') || ' ' || json_extract(request, '\$.denoising_strength') from renders where image = '$c1'")" \
		"sha256:$r2 sha256:$mask 0.6"
	expect_eq "$engine: the last candidate is the image" "$(q "$P" "select image from items where id = 2")" "$c2"
	[ $engine = a1111 ] && first=$c1
done
# ComfyUI: the graph kiln sent
requests /prompt >"$T/c.req"
$PY - "$T/c.req" <<'PY' || fail "comfyui inpaint graph"
import json, sys
g = json.load(open(sys.argv[1]))[-1]["json"]["prompt"]
by = {n["class_type"]: n["inputs"] for n in g.values()}
assert by["KSampler"]["denoise"] == 0.6 and by["LoadImageMask"]["channel"] == "red", by
assert by["VAEEncodeForInpaint"]["grow_mask_by"] == 6, by
assert by["CLIPTextEncode"]["text"] in ("a golden claw", "blurry, text, watermark"), by
PY

# review (A1111 project) lists the candidates and picks the first inpaint; release ships it
P=$T/a1111
start_review "$P"
py_check pick "$KILN_SRC/tests/cli" <<'PY'
import sys
sys.path.insert(0, sys.argv[3])
from review_client import Client
o = Client(int(sys.argv[1]), sys.argv[2]); o.login()
t = o.get("/api/tokens/2")
c = t["candidates"]
assert len(c) == 3, c
r = o.post("/api/tokens/2/decision", {"action": "pick", "candidate": 2})
assert r["review"]["candidate"] == 2, r
print(c[1]["image"])
PY
stop_review
expect_eq "the pick is the first inpaint" "$(tail -1 "$T/pick.log")" "$first"
# the example's legendary is drawn at 256 px: at the collection's 64 for QA's size check
vips resize "$P/legendaries/founder.png" "$T/f.png" 0.25 --kernel nearest && cp "$T/f.png" "$P/legendaries/founder.png"
"$KILN" -C "$P" build -q >"$T/b.out" 2>&1 || { cat "$T/b.out"; fail "build"; }
$PY - "$(st "$P" "$first")" "$P/dist/images/2.png" <<'PY' || fail "release ships the picked inpaint, upscaled"
import sys
from PIL import Image
c, d = Image.open(sys.argv[1]).convert("RGB"), Image.open(sys.argv[2]).convert("RGB")
assert d.size == (128, 128) and d.tobytes() == c.resize((128, 128), Image.NEAREST).tobytes()
PY
expect_eq "released disclosure" "$(exiftool -s3 -XMP-iptcExt:DigitalSourceType "$P/dist/images/2.png")" \
	http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia
finish
