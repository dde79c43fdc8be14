# The polish stage's SVGs released beside the images: owls with a pixels vectorize, released to
# ERC-721 and Metaplex. dist/images/<id>.svg is the chain's SVG (bytes), rsvg-convert of it
# equals dist/images/<id>.png, the metadata lists it in properties.files (ERC-721: the PNG and
# the SVG; Metaplex: an extra entry by its URI, the assets folder keeps Sugar's N.png only), the
# images CID covers it (equal to the npm importer's CID of dist/images), provenance.json lists
# it as an extra, kiln verify passes, and a changed SVG in a copy of dist/ fails verify naming
# the file. Once the spec has no vectorize, the release has no SVG.
. "$(dirname "$0")/lib.sh"
CMP="$PY $KILN_SRC/tests/polish/pngcmp.py"
P=$T/p
owls "$P"
sed -i 's/size: 60,/size: 12,/; s/count: 8,/count: 2,/g; s/count: 4,/count: 1,/; s/count: 3,/count: 1,/g' "$P/kiln.yaml"
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
echo 'polish: [{vectorize: {mode: pixels}}]' >>"$P/kiln.yaml"
DB=$P/.kiln/catalog.db
q() { sqlite3 "$DB" "$1"; }
"$KILN" -C "$P" build -q >"$T/out" 2>&1
expect_eq "build" $? 0
cat "$T/out"
n=$(q "select count(*) from items")
expect_eq "an SVG per token in dist/images" "$(ls "$P/dist/images" | grep -c '\.svg$')" "$n"
for id in $(q "select id from items order by id"); do
	svg=$(q "select output from polish_steps where item_id = $id and kind = 'vectorize'")
	expect_eq "images/$id.svg is the chain's SVG" "$(sha256sum <"$P/dist/images/$id.svg" | cut -c1-64)" "$svg"
	rsvg-convert "$P/dist/images/$id.svg" -o "$T/rs.png"
	$CMP "$T/rs.png" "$P/dist/images/$id.png" >"$T/cmp" && ok || fail "token $id: SVG raster differs from the PNG: $(cat "$T/cmp")"
done
$PY - "$P/dist" <<'PY' >"$T/py" 2>&1
import json, os, sys
d = sys.argv[1]
ipfs = json.load(open(f"{d}/ipfs.json"))
img = [e["cid"] for e in ipfs["entries"] if e["name"] == "images"][0]
m = json.load(open(f"{d}/metadata/1.json"))
files = m["properties"]["files"]
assert files == [{"uri": f"ipfs://{img}/1.png", "type": "image/png"},
                 {"uri": f"ipfs://{img}/1.svg", "type": "image/svg+xml"}], files
assert m["image"] == f"ipfs://{img}/1.png", m
a = f"{d}/metaplex/assets"
assert not [f for f in os.listdir(a) if f.endswith(".svg")], os.listdir(a)
prov = json.load(open(f"{d}/provenance.json"))
tok0 = prov["tokens"][0]
mp = json.load(open(f"{a}/0.json"))
svg = [f for f in mp["properties"]["files"] if f["type"] == "image/svg+xml"]
assert mp["properties"]["files"][0] == {"uri": "0.png", "type": "image/png"}, mp
assert svg == [{"uri": f"ipfs://{img}/{tok0['token_id']}.svg", "type": "image/svg+xml"}], (svg, tok0)
ex = {x["file"]: x["sha256"] for x in prov["extras"]}
assert len(ex) == len(prov["images"]) and "images/1.svg" in ex, ex
print("ok")
PY
expect_contains "metadata lists the SVGs" "$T/py" ok
grep -v '^ok$' "$T/py" | head -20
"$KILN" -C "$P" qa -q >"$T/qa" 2>&1
expect_eq "qa passes" $? 0
"$KILN" -C "$P" verify "$P/dist" >"$T/v" 2>&1
expect_eq "verify" $? 0
ORACLE=$KILN_SRC/tests/ipfs
if command -v node >/dev/null 2>&1 && [ -d "$ORACLE/node_modules" ]; then
	node "$ORACLE/oracle.mjs" "$P/dist/images" | tail -1 | cut -d' ' -f1 >"$T/oc"
	expect_eq "images CID (SVGs in it) equals the npm importer's" "$(cat "$T/oc")" \
		"$($PY -c "import json; print([e['cid'] for e in json.load(open('$P/dist/ipfs.json'))['entries'] if e['name'] == 'images'][0])")"
else
	fail "CIDs against the npm oracle: node or tests/ipfs/node_modules missing"
fi
# a changed SVG is caught
cp -r "$P/dist" "$T/d2"
sed -i 's/<\/svg>/<!-- x --><\/svg>/' "$T/d2/images/3.svg"
"$KILN" -C "$P" verify "$T/d2" >"$T/v2" 2>&1
expect_eq "verify a changed SVG" $? 1
expect_contains "names the SVG" "$T/v2" "images/3.svg: sha256 is"
# the vectorize step replaced by an upscale: the chains lose their SVG, so does dist/
sed -i 's/^polish:.*/polish: [{upscale: {factor: 2, method: nearest}}]/' "$P/kiln.yaml"
"$KILN" -C "$P" build -q >"$T/out2" 2>&1
expect_eq "build without vectorize" $? 0
expect_eq "no SVG released" "$(ls "$P/dist/images" | grep -c '\.svg$')" 0
expect_eq "no properties" "$($PY -c "import json; print('properties' in json.load(open('$P/dist/metadata/1.json')))")" False
finish
