# image.format: svg: the polish vectorize SVG is the released image. Spec errors first (svg with
# no vectorize, or one restricted to some tokens: file:line:col, exit 2). Then owls upscaled x2
# and vectorized, released to ERC-721 and Metaplex: metadata `image` is images/<id>.svg (by the
# images CID), properties.files lists the SVG then the PNG it was made from; Metaplex keeps
# N.png (its image must be PNG/GIF/JPEG), the SVG by URI; provenance.json's images are the SVGs
# (the provenance hash covers their bytes), the PNGs its extras; the SVG rasterised by librsvg
# equals the PNG beside it; kiln qa judges the SVGs (svg loader, 2x size), `kiln qa dist/` too
# (the PNGs are extras, no tokens); kiln verify passes,
# and fails naming images/N.svg when one is changed.
. "$(dirname "$0")/lib.sh"
CMP="$PY $KILN_SRC/tests/polish/pngcmp.py"
P=$T/p
owls "$P"
sed -i 's/size: 60,/size: 6,/; s/count: 8,/count: 1,/g; s/count: 4,/count: 1,/; s/count: 3,/count: 1,/g' "$P/kiln.yaml"
sed -i 's/^image: {width: 256, height: 256, format: png}/image: {width: 256, height: 256, format: svg}/' "$P/kiln.yaml"
line=$(grep -n '^image:' "$P/kiln.yaml" | cut -d: -f1)
set_metadata "$P" <<'YAML'
metadata:
  name: "Pixel Owl #{id}"
  start_id: 1
  targets: [erc721, metaplex]
  metaplex:
    seller_fee_basis_points: 500
    creators:
      - {address: "11111111111111111111111111111111", share: 100}
YAML
# no vectorize: refused where the spec says svg
"$KILN" -C "$P" plan -q >"$T/e1" 2>&1
expect_eq "svg without a vectorize step" $? 2
expect_contains "names image.format's place" "$T/e1" "kiln.yaml:$line:"
expect_contains "says why" "$T/e1" "image.format svg needs a polish vectorize step last"
echo 'polish: [{vectorize: {mode: pixels, tokens: [1]}}]' >>"$P/kiln.yaml"
"$KILN" -C "$P" plan -q >"$T/e2" 2>&1
expect_eq "svg with a vectorize for some tokens" $? 2
expect_contains "names the polish block" "$T/e2" "kiln.yaml:$(grep -n "^polish:" "$P/kiln.yaml" | cut -d: -f1):"
sed -i 's/^polish:.*/polish: [{upscale: {factor: 2, method: nearest}}, {vectorize: {mode: pixels}}]/' "$P/kiln.yaml"
DB=$P/.kiln/catalog.db
q() { sqlite3 "$DB" "$1"; }
"$KILN" -C "$P" build -q >"$T/out" 2>&1
expect_eq "build" $? 0
cat "$T/out"
for id in $(q "select id from items order by id"); do
	svg=$(q "select output from polish_steps where item_id = $id and kind = 'vectorize' and is_image")
	png=$(q "select input from polish_steps where item_id = $id and kind = 'vectorize'")
	expect_eq "images/$id.svg is the chain's final image" "$(sha256sum <"$P/dist/images/$id.svg" | cut -c1-64)" "$svg"
	expect_eq "images/$id.png is the SVG's input" "$(sha256sum <"$P/dist/images/$id.png" | cut -c1-64)" "$png"
	rsvg-convert "$P/dist/images/$id.svg" -o "$T/rs.png"
	$CMP "$T/rs.png" "$P/dist/images/$id.png" >"$T/cmp" && ok || fail "token $id: SVG raster differs from the PNG: $(cat "$T/cmp")"
done
$PY - "$P/dist" <<'PY' >"$T/py" 2>&1
import hashlib, json, sys
d = sys.argv[1]
ipfs = json.load(open(f"{d}/ipfs.json"))
img = [e["cid"] for e in ipfs["entries"] if e["name"] == "images"][0]
m = json.load(open(f"{d}/metadata/1.json"))
assert m["image"] == f"ipfs://{img}/1.svg", m
assert m["properties"]["files"] == [{"uri": f"ipfs://{img}/1.svg", "type": "image/svg+xml"},
                                    {"uri": f"ipfs://{img}/1.png", "type": "image/png"}], m
prov = json.load(open(f"{d}/provenance.json"))
assert [i["file"] for i in prov["images"]] == [f"images/{k}.svg" for k in range(1, 7)], prov["images"]
for i in prov["images"]:
    assert hashlib.sha256(open(f"{d}/{i['file']}", "rb").read()).hexdigest() == i["sha256"], i
# the provenance hash: SHA-256 of the images' hashes in order (the SVG bytes)
cat = "".join(i["sha256"] for i in prov["images"])
assert hashlib.sha256(cat.encode()).hexdigest() == prov["provenance_hash"], prov["provenance_hash"]
assert sorted(x["file"] for x in prov["extras"]) == sorted(f"images/{k}.png" for k in range(1, 7))
a = f"{d}/metaplex/assets"
tok0 = prov["tokens"][0]["token_id"]
mp = json.load(open(f"{a}/0.json"))
assert mp["image"] == "0.png" and mp["properties"]["category"] == "image", mp
assert mp["properties"]["files"] == [{"uri": "0.png", "type": "image/png"},
                                     {"uri": f"ipfs://{img}/{tok0}.svg", "type": "image/svg+xml"}], mp
assert open(f"{a}/0.png", "rb").read() == open(f"{d}/images/{tok0}.png", "rb").read()
print("ok")
PY
expect_contains "metadata, provenance and Metaplex" "$T/py" ok
grep -v '^ok$' "$T/py" | head -20
"$KILN" -C "$P" qa --json >"$T/qa" 2>&1
expect_eq "qa passes" $? 0
# the released folder judged as a folder: the PNGs beside the SVGs are provenance.json
# extras, not six more tokens (duplicates of the SVGs' pixels)
"$KILN" qa "$P/dist" --standard erc721 >"$T/qaf" 2>&1
expect_contains "qa of dist/ counts the SVG images only" "$T/qaf" "qa: 6 images checked, 0 errors"
"$KILN" -C "$P" verify "$P/dist" >"$T/v" 2>&1
expect_eq "verify" $? 0
cat "$T/v" | head -3
cp -r "$P/dist" "$T/d2"
sed -i 's/<\/svg>/<!-- x --><\/svg>/' "$T/d2/images/3.svg"
"$KILN" -C "$P" verify "$T/d2" >"$T/v2" 2>&1
expect_eq "verify a changed SVG image" $? 1
expect_contains "names the SVG" "$T/v2" "images/3.svg: sha256 is"
expect_contains "provenance hash broken" "$T/v2" "provenance hash: the images give"
finish
