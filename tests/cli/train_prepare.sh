# kiln train prepare end to end on a drawn dataset (tests/train/make_dataset.py): the report
# (a broken file, an exact duplicate within and across datasets, a near duplicate, a missing
# caption, non-RGB images, a dataset without licence, an image that is a token), the manifest
# checked against the files, kohya's dataset.toml against the keys and types kohya's config
# reader accepts (tests/train/check_toml.py), a rerun that rewrites nothing, a changed caption,
# --strict, the collection's approved tokens captioned from their traits (ai-toolkit YAML).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/review_common.inc"
P=$T/p
$PY "$KILN_SRC/tests/train/make_dataset.py" "$P"
"$KILN" -C "$P" plan -q >/dev/null && "$KILN" -C "$P" render -q >/dev/null 2>&1
expect_eq "the collection renders" $? 0
# a token's image slipped into the dataset
TOK=$(find "$P/.kiln/store" -type f | sort | head -1)
cp "$TOK" "$P/data/owls/token_copy.png"
echo "pixel owl, a token" >"$P/data/owls/token_copy.txt"

"$KILN" -C "$P" train prepare owl_style --json -j 2 >"$T/prep.json" 2>"$T/prep.err"
expect_eq "prepare exits 0 with findings" $? 0
$PY - "$T/prep.json" >"$T/findings.log" 2>&1 <<'PY'
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
f = {(e["kind"], e["path"]) for e in ev if e["event"] == "finding"}
want = {("broken", "data/owls/broken.png"), ("duplicate", "data/owls/owl_03.png"),
        ("duplicate", "data/more/copied_11.png"), ("near-duplicate", "data/owls/owl_05.png"),
        ("caption-missing", "data/owls/nocap_07.png"), ("colour", "data/owls/grey_08.png"),
        ("colour", "data/owls/alpha_09.png"), ("colour", "data/owls/cmyk_10.jpg"),
        ("license-missing", "data/more"), ("token", "data/owls/token_copy.png")}
assert want <= f, ("missing", want - f)
assert len(f) == len(want), ("unexpected", f - want)
dup = [e for e in ev if e["event"] == "finding" and e["path"] == "data/more/copied_11.png"][0]
assert dup["other"] == "data/owls/owl_11.png" and "another dataset" in dup["message"], dup
s = ev[-1]
assert s["event"] == "summary" and s["images"] == 28 and s["written"] == 28, s
assert s["recorded"] is True and len(s["sha256"]) == 64, s
PY
expect_eq "findings: $(tail -c 600 "$T/findings.log")" $? 0

# the manifest against the files
$PY - "$P" >"$T/manifest.log" 2>&1 <<'PY'
import hashlib, json, math, os, sys
from PIL import Image
p = sys.argv[1]
tdir = os.path.join(p, ".kiln/train/owl_style")
man = json.load(open(os.path.join(tdir, "manifest.json")))
sha = lambda f: hashlib.sha256(open(f, "rb").read()).hexdigest()
assert man["version"] == 1 and man["name"] == "owl_style" and man["trainer"] == "kohya"
assert [d["images"] for d in man["datasets"]] == [22, 6], man["datasets"]
assert man["datasets"][0]["license"] == "CC-BY-4.0" and man["datasets"][1]["license"] is None
srcs = [im["source"] for im in man["images"]]
assert "data/owls/broken.png" not in srcs and "data/owls/owl_03.png" not in srcs
assert "data/more/copied_11.png" not in srcs
for im in man["images"]:
    assert sha(os.path.join(p, im["source"])) == im["sha256_source"], im["source"]
    out = os.path.join(p, im["file"])
    assert sha(out) == im["sha256"], im["file"]
    w, h = im["bucket"]
    assert Image.open(out).size == (w, h) and Image.open(out).mode == "RGB", im
    assert w % 64 == 0 and h % 64 == 0 and 128 <= min(w, h) and max(w, h) <= 512, im
    assert w * h <= 256 * 256, im
    sw, sh = im["source_size"]
    assert Image.open(os.path.join(p, im["source"])).size == (sw, sh), im
    x, y, cw, ch = im["crop"]
    assert 0 <= x and 0 <= y and x + cw <= sw + 1 and y + ch <= sh + 1, im
    assert abs(cw / ch - w / h) < 0.05, im
    assert len(im["phash"]) == 16, im
    ext = man["datasets"][im["dataset"]]["caption_extension"]
    cap = open(os.path.splitext(out)[0] + ext).read()
    if im["caption_from"] == "missing":
        assert im["source"] == "data/owls/nocap_07.png" and cap == "pixel owl", (im, cap)
    else:
        assert cap == im["caption"], (im, cap)
# the pHash: QA's (imagehash's phash, restated as bench/train/peer.py does) of the prepared
# pixels; a PNG is lossless, so its file has the same
COS = [[math.cos(math.pi * k * (2 * n + 1) / 64) for n in range(32)] for k in range(8)]
def phash(im):
    px = list(im.convert("L").resize((32, 32), Image.LANCZOS).getdata())
    d0 = [[2 * sum(COS[k][n] * px[n * 32 + c] for n in range(32)) for c in range(32)]
          for k in range(8)]
    low = [2 * sum(COS[l][m] * d0[k][m] for m in range(32)) for k in range(8) for l in range(8)]
    med = sorted(low)[31:33]
    return sum(1 << (63 - i) for i, v in enumerate(low) if v > (med[0] + med[1]) / 2)
for im in man["images"]:
    if im["file"].endswith(".png"):
        d = bin(phash(Image.open(os.path.join(p, im["file"]))) ^ int(im["phash"], 16)).count("1")
        assert d <= 1, (im["file"], d)
bysrc = {im["source"]: im for im in man["images"]}
assert bysrc["data/owls/owl_01.png"]["caption"] == "pixel owl, drawing 1"
assert bysrc["data/more/sketch_2_blue-owl.jpg"]["caption"] == "sketch, sketch 2 blue owl"
assert bysrc["data/more/sketch_2_blue-owl.jpg"]["file"].endswith("images/1/sketch_2_blue-owl.jpg")
assert bysrc["data/owls/cmyk_10.jpg"]["converted"].startswith("CMYK")
# every bucket as kohya's BucketManager picks it (model_util.make_bucket_resolutions and
# train_util.select_bucket at 48d368fa, restated here in Python): resolution 256, 128..512/64
import math
area = 256 * 256
resos = {(int(math.sqrt(area) // 64) * 64,) * 2}
for w in range(128, 513, 64):
    h = min(512, int((area // w) // 64) * 64)
    if h >= 128:
        resos |= {(w, h), (h, w)}
resos = sorted(resos)
for im in man["images"]:
    sw, sh = im["source_size"]
    ar = sw / sh
    errs = [abs(a / b - ar) for a, b in resos]
    want = (sw, sh) if (sw, sh) in resos else resos[errs.index(min(errs))]
    assert im["bucket"] == list(want), (im["source"], im["bucket"], want)
assert bysrc["data/owls/owl_13.png"]["bucket"] == [320, 192]  # 200x100
cmd = json.load(open(os.path.join(tdir, "command.json")))["argv"]
assert cmd[:3] == ["accelerate", "launch", "sdxl_train_network.py"], cmd
for flag, v in (("--dataset_config", "dataset.toml"), ("--network_module", "networks.lora"),
                ("--network_dim", "16"), ("--network_alpha", "8.0"),
                ("--max_train_steps", "1500"), ("--seed", "7"), ("--output_dir", "output"),
                ("--output_name", "owl_style"), ("--save_model_as", "safetensors"),
                ("--pretrained_model_name_or_path", "sd_xl_base_1.0.safetensors")):
    assert cmd[cmd.index(flag) + 1] == v, (flag, cmd)
PY
expect_eq "manifest: $(tail -c 800 "$T/manifest.log")" $? 0
$PY "$KILN_SRC/tests/train/check_toml.py" "$P/.kiln/train/owl_style" >"$T/toml.log" 2>&1
expect_eq "kohya's schema: $(tail -c 800 "$T/toml.log")" $? 0

# a rerun with nothing changed rewrites nothing
M=$P/.kiln/train/owl_style/manifest.json
before=$(stat -c %Y.%i "$M" "$P/.kiln/train/owl_style/images/0/owl_01.png" \
	"$P/.kiln/train/owl_style/dataset.toml" | tr '\n' ' ')
sleep 1
"$KILN" -C "$P" train prepare owl_style >"$T/rerun.out" 2>"$T/rerun.err"
expect_eq "rerun exits 0" $? 0
expect_contains "rerun says nothing changed" "$T/rerun.out" "28 images prepared (0 written, 28 unchanged)"
expect_contains "rerun says nothing changed" "$T/rerun.out" "nothing changed"
expect_contains "rerun still reports" "$T/rerun.err" "data/owls/broken.png: broken"
after=$(stat -c %Y.%i "$M" "$P/.kiln/train/owl_style/images/0/owl_01.png" \
	"$P/.kiln/train/owl_style/dataset.toml" | tr '\n' ' ')
expect_eq "no file rewritten" "$after" "$before"
rows() { $PY -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(
	'SELECT count(*) FROM train_prepared WHERE name = ?', ('owl_style',)).fetchone()[0])" \
	"$P/.kiln/catalog.db"; }
expect_eq "one catalog record" "$(rows)" 1

# a changed caption: a new manifest, recorded; no image re-encoded
echo "pixel owl, drawing one, redrawn" >"$P/data/owls/owl_01.txt"
"$KILN" -C "$P" train prepare owl_style --json >"$T/re2.json" 2>/dev/null
expect_eq "prepare after a caption edit" $? 0
expect_contains "nothing re-encoded" "$T/re2.json" '"written":0'
expect_contains "the new manifest recorded" "$T/re2.json" '"recorded":true'
expect_eq "two catalog records" "$(rows)" 2
expect_eq "the caption file follows" "$(cat "$P/.kiln/train/owl_style/images/0/owl_01.txt")" \
	"pixel owl, drawing one, redrawn"

# --strict: the broken file fails the prepare
"$KILN" -C "$P" train prepare owl_style --strict -q >/dev/null 2>"$T/strict.err"
expect_eq "--strict with a broken image exits 1" $? 1
expect_contains "--strict says why" "$T/strict.err" "1 image cannot be used"
"$KILN" -C "$P" train prepare nosuch 2>"$T/nosuch.err"
expect_eq "an unknown training is a usage error" $? 2
expect_contains "names the trainings" "$T/nosuch.err" "trainings: owl_style, owl_tokens"

# the collection's approved tokens, captioned from their traits (ai-toolkit)
"$KILN" -C "$P" train prepare owl_tokens -q 2>"$T/none.err"
expect_eq "no approved token: nothing to train" $? 1
expect_contains "says so" "$T/none.err" "has no usable image"
start_review "$P"
py_check approve "$KILN_SRC/tests/cli" <<'PY'
import sys
sys.path.insert(0, sys.argv[3])
from review_client import Client
o = Client(int(sys.argv[1]), sys.argv[2]); o.login()
for t in (1, 3):
    o.post("/api/tokens/%d/decision" % t, {"action": "approve"})
PY
stop_review
"$KILN" -C "$P" train prepare owl_tokens -q 2>"$T/tok.err"
expect_eq "prepare the approved tokens" $? 0
$PY - "$P" >"$T/tokens.log" 2>&1 <<'PY'
import json, os, subprocess, sys, yaml
p = sys.argv[1]
tdir = os.path.join(p, ".kiln/train/owl_tokens")
man = json.load(open(os.path.join(tdir, "manifest.json")))
assert [im["token"] for im in man["images"]] == [1, 3], man["images"]
items = {}
for l in subprocess.run([os.environ["KILN"], "-C", p, "ls", "--json"], capture_output=True,
                        text=True).stdout.splitlines():
    it = json.loads(l)
    items[it["id"]] = it
for im in man["images"]:
    tr = items[im["token"]]["traits"]
    assert im["caption"] == "towl, %s owl, %s" % (tr["Body"], tr["Hat"]), (im, tr)
    assert im["caption_from"] == "traits" and im["bucket"] == [128, 128], im
assert not os.path.exists(os.path.join(tdir, "dataset.toml"))
cfg = yaml.safe_load(open(os.path.join(tdir, "config.yaml")))
assert cfg["job"] == "extension", cfg
proc = cfg["config"]["process"][0]
assert proc["type"] == "sd_trainer" and proc["model"]["is_xl"] is True, proc
assert proc["network"] == {"type": "lora", "linear": 16, "linear_alpha": 1.0}, proc
ds = proc["datasets"][0]
assert ds["folder_path"] == "images/0" and ds["caption_ext"] == "txt", ds
assert os.path.isdir(os.path.join(tdir, ds["folder_path"]))
# 3 epochs of 2 images x 1 repeat at batch 1
assert proc["train"]["steps"] == 6, proc["train"]
assert man["command"] is None
PY
expect_eq "tokens: $(tail -c 800 "$T/tokens.log")" $? 0

# a JPEG at least twice its bucket is decoded at 1/2, 1/4 or 1/8 by libjpeg (shrink-on-load,
# as Pillow's draft()), not decoded whole and resized: the prepared pixels are the scaled
# decode (a 1024² photo to the 256² bucket: 1/4, nothing else to resize)
mkdir -p "$P/data/big"
$PY - "$P/data/big" <<'PY'
import sys
from PIL import Image, ImageFilter
im = Image.effect_noise((1024, 1024), 60).filter(ImageFilter.GaussianBlur(1)).convert("RGB")
im.save(sys.argv[1] + "/photo.jpg", quality=90)
PY
cat >>"$P/kiln.yaml" <<'YAML'
  - name: big
    base: sd_xl_base_1.0.safetensors
    trainer: kohya
    datasets: [{dir: data/big, class_tokens: photo, license: CC0-1.0}]
    resolution: 256
    steps: 10
    local: {command: [accelerate, launch, sdxl_train_network.py]}
YAML
"$KILN" -C "$P" train prepare big -q 2>"$T/big.err"
expect_eq "prepare a big JPEG: $(cat "$T/big.err")" $? 0
$PY - "$P" >"$T/big.log" 2>&1 <<'PY'
import sys
from PIL import Image
p = sys.argv[1]
src = Image.open(p + "/data/big/photo.jpg")
src.draft("RGB", (256, 256))
assert src.size == (256, 256), src.size
a = src.convert("RGB").tobytes()
b = Image.open(p + "/.kiln/train/big/images/0/photo.jpg").convert("RGB").tobytes()
mad = sum(abs(x - y) for x, y in zip(a, b)) / len(a)
assert mad < 2.0, mad  # 1.5: the JPEG at quality 95 only (a whole decode resized: 2.9)
PY
expect_eq "big JPEG: $(tail -c 300 "$T/big.log")" $? 0
finish
