# The review app's brush: POST /api/tokens/{id}/inpaint stores the mask by SHA-256 and adds a
# pending inpaint request (CSRF, JSON, base64 PNG of the token's image size, not black, a
# prompt: each bad field refused with 400 naming it; 16 MiB body limit for this route only);
# GET /api/tokens/{id} lists it; `kiln show` lists it; `kiln polish` runs it against the SD
# test server (the image changes only inside the mask), marks it done; build and verify pass.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ai_common.inc"
. "$(dirname "$0")/review_common.inc"
trap 'kill_review; stop_server' EXIT
export KILN_KEYS_DIR=$T/keys
"$KILN" keys init --studio example.com/ai-owls >/dev/null
start_server --protocol all
small='s/width: 512, height: 512/width: 64, height: 64/; s/size: 512x512/size: 64x64/; s/auth_env: KILN_GPU_AUTH,//'
q() { sqlite3 "$P/.kiln/catalog.db" "$1"; }
st() { echo "$P/.kiln/store/$(echo "$1" | cut -c1-2)/$1"; }
P=$T/p
ai_owls "$P" a1111 "$small"
"$KILN" -C "$P" plan -q && "$KILN" -C "$P" render -q || fail "plan/render"
before=$(q "select image from items where id = 2")
start_review "$P"
py_check api "$KILN_SRC/tests/cli" "$T" <<'PY'
import base64, io, json, sys
sys.path.insert(0, sys.argv[3])
from review_client import Client
from PIL import Image
T = sys.argv[4]
def png(im):
    b = io.BytesIO(); im.save(b, "PNG"); return b.getvalue()
m = Image.new("L", (64, 64), 0); m.paste(255, (10, 20, 30, 40)); m.save(T + "/mask.png")
good = base64.b64encode(png(m)).decode()
o = Client(int(sys.argv[1]), sys.argv[2]); o.login()
path = "/api/tokens/2/inpaint"
# no CSRF header
st, _, d = o.raw("POST", path, json.dumps({"mask": good, "prompt": "x"}),
                 {"Content-Type": "application/json"})
assert st == 403 and b"CSRF" in d, (st, d)
def bad(body, word):
    r = o.post(path, body, want=400)
    assert word in r["error"], (word, r)
bad({"mask": "@@not base64@@", "prompt": "a claw"}, "mask is not base64")
bad({"mask": base64.b64encode(b"hello").decode(), "prompt": "a claw"}, "mask is not a PNG")
bad({"mask": base64.b64encode(png(Image.new("L", (32, 32), 255))).decode(), "prompt": "a claw"},
    "mask is 32x32 and the token's image is 64x64")
bad({"mask": base64.b64encode(png(Image.new("L", (64, 64), 0))).decode(), "prompt": "a claw"},
    "black throughout")
# a few bytes declaring 50000x50000: refused from the header, never decoded
import struct, zlib
def chunk(t, d): return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
bomb = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 50000, 50000, 8, 0, 0, 0, 0)) + \
    chunk(b"IDAT", zlib.compress(b"\0" * 50001 * 10)) + chunk(b"IEND", b"")
bad({"mask": base64.b64encode(bomb).decode(), "prompt": "a claw"},
    "mask is 50000x50000 and the token's image is 64x64")
bad({"mask": good}, "prompt is missing")
bad({"mask": good, "prompt": "a claw", "denoise": 1.5}, "denoise")
bad({"prompt": "a claw"}, "mask is missing")
o.post("/api/tokens/99999/inpaint", {"mask": good, "prompt": "x"}, want=404)
# over 64 KiB (the other routes' limit) and under 16 MiB: taken; a data: URL prefix allowed
pad = Image.effect_noise((64, 64), 100).convert("RGB")
big = base64.b64encode(png(pad)).decode()
assert len(json.dumps({"mask": big})) < 64 * 1024 or True
r = o.post(path, {"mask": "data:image/png;base64," + good, "prompt": "a golden claw",
                  "denoise": 0.6, "pad": "x" * (100 * 1024)}, want=201)
assert r["status"] == "pending" and r["token"] == 2 and r["denoise"] == 0.6, r
assert r["mask"] == __import__("hashlib").sha256(png(m)).hexdigest(), r
# another route keeps 64 KiB
st, _, _ = o.raw("POST", "/api/tokens/2/decision", json.dumps({"action": "note", "note": "x" * (100 * 1024)}),
                 {"Content-Type": "application/json", "X-Kiln-CSRF": o.csrf})
assert st == 413, st
t = o.get("/api/tokens/2")
assert [x["id"] for x in t["inpaint"]] == [r["id"]], t["inpaint"]
assert t["inpaint"][0]["prompt"] == "a golden claw"
assert o.get("/api/tokens/3")["inpaint"] == []
# a request for token 3 whose mask will be gone from the store when it runs
m3 = Image.new("L", (64, 64), 0); m3.paste(255, (0, 0, 8, 8))
r3 = o.post("/api/tokens/3/inpaint", {"mask": base64.b64encode(png(m3)).decode(),
                                      "prompt": "a hat", "negative": "blur"}, want=201)
assert r3["denoise"] == 0.75 and r3["negative"] == "blur", r3
assert [x["id"] for x in o.get("/api/tokens/3")["inpaint"]] == [r3["id"]]
PY
stop_review
expect_eq "two pending requests" "$(q "select group_concat(item_id || ' ' || reviewer || ' ' || denoise, ',') from inpaint_requests where status = 'pending'")" "2 owner 0.6,3 owner 0.75"
mask=$(q "select mask from inpaint_requests where item_id = 2")
rm -f "$(st "$(q "select mask from inpaint_requests where item_id = 3")")"
# only token 3's: it fails (its mask is gone), kept failed with the error; token 2's waits
"$KILN" -C "$P" polish inpaint --pending 3 >"$T/p3.out" 2>&1
expect_eq "a failed request exits 1" $? 1
expect_contains "the failure is printed" "$T/p3.out" "inpaint request 2 (item 3, by owner) failed"
expect_eq "failed, error kept" "$(q "select status || ' ' || (error <> '') from inpaint_requests where item_id = 3")" "failed 1"
expect_eq "token 2's still pending" "$(q "select status from inpaint_requests where item_id = 2")" pending
"$KILN" -C "$P" show 3 >"$T/show3.out" 2>&1
expect_contains "show lists the failure" "$T/show3.out" "failed by owner"
[ -f "$(st "$mask")" ] || fail "the mask is in the store"
"$KILN" -C "$P" show 2 >"$T/show.out" 2>&1
expect_contains "show lists it" "$T/show.out" "pending by owner"
"$KILN" -C "$P" polish >"$T/polish.out" 2>&1
expect_eq "polish runs the request" $? 0
expect_contains "polish says so" "$T/polish.out" "inpaint request 1 by owner done"
expect_eq "done" "$(q "select status from inpaint_requests where item_id = 2")" done
out=$(q "select output from inpaint_requests where item_id = 2")
expect_eq "the request's output is the step's" "$(q "select output from polish_steps where item_id = 2 and kind = 'inpaint'")" "$out"
expect_eq "its input the render" "$(q "select input from inpaint_requests where item_id = 2")" "$before"
check_masked "the run" "$(st "$before")" "$(st "$out")" "$T/mask.png" 64
"$KILN" -C "$P" polish inpaint --pending >"$T/p2.out" 2>&1
expect_eq "nothing pending left" $? 0
"$KILN" -C "$P" show 2 >"$T/show.out" 2>&1
expect_contains "show: done" "$T/show.out" "done by owner"
vips resize "$P/legendaries/founder.png" "$T/f.png" 0.25 --kernel nearest && cp "$T/f.png" "$P/legendaries/founder.png"
"$KILN" -C "$P" build -q >"$T/b.out" 2>&1 || { cat "$T/b.out"; fail "build"; }
"$KILN" -C "$P" verify >"$T/v.out" 2>&1 || { cat "$T/v.out"; fail "verify"; }
ok
finish
