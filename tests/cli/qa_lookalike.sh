# Look-alikes mean what a person means (issue 18 items 3, 4): tokens that differ in a trait of
# another colour are not near duplicates (the grey pHash alone flagged 11 of the 60 owls); an
# image re-encoded, resized or noised still is; labels say what was measured ("same pixels"
# only for equal pixels); --html pages its findings and makes thumbnails only for them.
. "$(dirname "$0")/lib.sh"
P=$T/owls
owls "$P"
"$KILN" -C "$P" build -q >/dev/null 2>&1
expect_eq "owls build" $? 0
count() { # json check
	$PY -c "import json,sys; d=json.load(open(sys.argv[1])); print(sum(f['check'] == sys.argv[2] for f in d['findings']))" "$@"
}
"$KILN" -C "$P" qa -q --json="$T/c.json"
expect_eq "owls: no look-alikes by colour" "$(count "$T/c.json" image.near_duplicate)" 0
"$KILN" -C "$P" qa -q --near-measure phash --json="$T/p.json"
n=$(count "$T/p.json" image.near_duplicate)
[ "$n" -ge 5 ] && ok || fail "owls: the grey pHash alone still finds its look-alikes ($n)"
"$KILN" -C "$P" qa -q --near-measure grey >"$T/o" 2>&1
expect_eq "--near-measure: a bad value" $? 2
# a Sugar folder: 8 owls, then copies of three of them re-encoded, resized, noised, and one
# exact copy
S=$T/sugar
mkdir -p "$S"
$PY - "$P/dist/images" "$S" <<'PY' || fail "variants drawn"
import io, json, random, sys
from PIL import Image
src, out = sys.argv[1], sys.argv[2]
random.seed(7)
def put(n, im):
    im.save("%s/%d.png" % (out, n))
    json.dump({"name": "Owl %d" % n, "symbol": "OWL", "description": "", "seller_fee_basis_points": 0,
               "image": "%d.png" % n, "attributes": [{"trait_type": "n", "value": str(n)}],
               "properties": {"files": [{"uri": "%d.png" % n, "type": "image/png"}], "category": "image"}},
              open("%s/%d.json" % (out, n), "w"))
owls = [Image.open("%s/%d.png" % (src, i + 1)).convert("RGB") for i in range(8)]
for i, im in enumerate(owls):
    put(i, im)
b = io.BytesIO()
owls[0].save(b, "JPEG", quality=80)
put(8, Image.open(io.BytesIO(b.getvalue())).convert("RGB"))
put(9, owls[1].resize((192, 192), Image.LANCZOS).resize((256, 256), Image.LANCZOS))
noisy = owls[2].copy()
px = noisy.load()
for y in range(noisy.size[1]):
    for x in range(noisy.size[0]):
        px[x, y] = tuple(max(0, min(255, int(c + random.gauss(0, 5)))) for c in px[x, y])
put(10, noisy)
put(11, owls[3])
PY
"$KILN" qa "$S" -q --json="$T/s.json" --html "$T/html"
$PY - "$T/s.json" <<'PY' >"$T/py"
import json, sys
d = json.load(open(sys.argv[1]))
print(" ".join(sorted(f["file"] for f in d["findings"] if f["check"] == "image.near_duplicate")))
print(" ".join(f["file"] for f in d["findings"] if f["check"] == "image.duplicate"))
print("same pixels" in " ".join(f["message"] for f in d["findings"] if f["check"] == "image.near_duplicate"))
PY
expect_eq "re-encoded, resized and noised copies are look-alikes" "$(sed -n 1p "$T/py")" "10.png 8.png 9.png"
expect_eq "the exact copy is a duplicate" "$(sed -n 2p "$T/py")" "11.png"
expect_eq "a look-alike is never called same pixels" "$(sed -n 3p "$T/py")" "False"
expect_contains "the colour difference is given" "$T/s.json" "delta E"
expect_contains "html: exact copy labelled" "$T/html/index.html" "same pixels"
expect_contains "html: look-alikes labelled by what was measured" "$T/html/index.html" "colour difference"
expect_eq "html: same pixels only once (the exact copy)" "$(grep -o '<td>same pixels</td>' "$T/html/index.html" | wc -l)" 1
# thumbnails: the tokens with findings and their look-alikes (0 1 2 3 8 9 10 11), not all 12
expect_eq "html: thumbnails only for tokens shown" "$(ls "$T/html/thumbs" | wc -l)" 8
# a large report is paged: 600 tiny tokens, each a look-alike of the one before
L=$T/large
mkdir -p "$L"
$PY - "$L" <<'PY' || fail "large folder drawn"
import json, sys
from PIL import Image
for n in range(600):
    Image.new("RGB", (8, 8), (n % 200 + 20, 90, 90)).save("%s/%d.png" % (sys.argv[1], n))
    json.dump({"name": "T %d" % n, "symbol": "T", "description": "", "seller_fee_basis_points": 0,
               "image": "%d.png" % n, "attributes": [{"trait_type": "n", "value": str(n)}],
               "properties": {"files": [{"uri": "%d.png" % n, "type": "image/png"}], "category": "image"}},
              open("%s/%d.json" % (sys.argv[1], n), "w"))
PY
"$KILN" qa "$L" -q --near 32 --near-measure phash --html "$T/lhtml" >/dev/null 2>&1
[ -f "$T/lhtml/findings-2.html" ] && ok || fail "html: a second page for findings past 500"
rows=$(grep -c '^<tr><td>' "$T/lhtml/index.html")
[ "$rows" -le 760 ] && ok || fail "html: index.html holds one page ($rows rows)"
finish
