# kiln release on the owls example with every target: ERC-721 (default layout), ERC-1155 names,
# Metaplex/Sugar layout and rules, contract JSON, display types, CIDs and CARs equal to the npm
# importer's, the provenance hash recomputed in Python, the same bytes every time.
. "$(dirname "$0")/lib.sh"
P=$T/owls
owls "$P"
# the example's last line is its metadata block: replace it with one naming every target
set_metadata "$P" <<'YAML'
metadata:
  name: "Pixel Owl #{id}"
  start_id: 1
  targets: [erc721, erc1155, metaplex]
  attributes:
    - {trait_type: Generation, value: 1, display_type: number, max_value: 3}
    - {trait_type: Power, value: 10, display_type: boost_percentage}
    - {trait_type: Series, value: Genesis}
  contract:
    image: legendaries/founder.png
    banner_image: "https://example.com/banner.png"
    collaborators: ["0x00000000000000000000000000000000000000aa"]
  metaplex:
    seller_fee_basis_points: 500
    creators:
      - {address: "11111111111111111111111111111111", share: 70}
      - {address: "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA", share: 30}
    collection: {name: Pixel Owls, image: legendaries/founder.png}
YAML
"$KILN" -C "$P" build -q >"$T/out" 2>&1
expect_eq "build with every target" $? 0
cat "$T/out"
"$KILN" -C "$P" release --force --car >"$T/rel" 2>&1
expect_eq "release --car" $? 0
expect_contains "release prints the images CID" "$T/rel" "images     ipfs://bafy"
expect_contains "release prints the provenance hash" "$T/rel" "provenance "

$PY - "$P/dist" <<'PY' >"$T/py" 2>&1
import hashlib, json, os, re, sys
d = sys.argv[1]
ipfs = json.load(open(f"{d}/ipfs.json"))
cids = {e["name"]: e.get("cid") for e in ipfs["entries"]}
img = cids["images"]
assert img.startswith("bafy"), cids
# ERC-721: the default layout, image URIs on the real images CID
allm = json.load(open(f"{d}/_metadata.json"))
assert sorted(os.listdir(f"{d}/metadata")) == sorted(f"{i}.json" for i in range(1, 61))
for i in range(1, 61):
    m = json.load(open(f"{d}/metadata/{i}.json"))
    assert m == allm[i - 1]
    assert m["image"] == f"ipfs://{img}/{i}.png", m["image"]
    a = m["attributes"]
    assert {"display_type": "number", "trait_type": "Generation", "value": 1, "max_value": 3} in a, a
    assert {"display_type": "boost_percentage", "trait_type": "Power", "value": 10} in a, a
    assert {"trait_type": "Series", "value": "Genesis"} in a, a
    # ERC-1155: {id} is 64 lowercase hex digits, no 0x; same token JSON
    n = f"{i:064x}"
    assert json.load(open(f"{d}/erc1155/metadata/{n}.json")) == m
assert len(os.listdir(f"{d}/erc1155/metadata")) == 60
assert all(re.fullmatch(r"[0-9a-f]{64}\.json", f) for f in os.listdir(f"{d}/erc1155/metadata"))
assert ipfs["base_uri"] == f"ipfs://{cids['metadata']}/"
assert ipfs["erc1155_uri"] == f"ipfs://{cids['erc1155-metadata']}/{{id}}.json"
# contract-level JSON
c = json.load(open(f"{d}/contract.json"))
assert c["name"] == "Pixel Owls" and c["external_link"] == "https://example.com/owls", c
assert c["image"] == f"ipfs://{cids['contract_images']}/image.png", c
assert c["banner_image"] == "https://example.com/banner.png"
assert c["collaborators"] == ["0x00000000000000000000000000000000000000aa"]
assert ipfs["contract_uri"] == f"ipfs://{cids['contract']}"
# Metaplex / Sugar: assets/0..59 (.png + .json), collection.png + collection.json, nothing else
a = f"{d}/metaplex/assets"
want = {f"{i}.png" for i in range(60)} | {f"{i}.json" for i in range(60)} | {"collection.png", "collection.json"}
assert set(os.listdir(a)) == want, set(os.listdir(a)) ^ want
for i in range(60):
    m = json.load(open(f"{a}/{i}.json"))
    assert len(m["name"].encode()) <= 32 and len(m["symbol"].encode()) <= 10
    assert m["symbol"] == "OWLS" and m["seller_fee_basis_points"] == 500
    assert m["image"] == f"{i}.png"
    assert m["properties"]["files"] == [{"uri": f"{i}.png", "type": "image/png"}]
    assert m["properties"]["category"] == "image"
    cr = m["properties"]["creators"]
    assert sum(x["share"] for x in cr) == 100 and len(cr) <= 4
    assert all(isinstance(x["value"], str) and set(x) == {"trait_type", "value"} for x in m["attributes"])
    assert len(m.get("external_url", "")) <= 200 and isinstance(m["description"], str)
    # no starting index: asset i is token i+1, the same image bytes
    assert open(f"{a}/{i}.png", "rb").read() == open(f"{d}/images/{i + 1}.png", "rb").read()
    e = json.load(open(f"{d}/metadata/{i + 1}.json"))
    assert m["name"] == e["name"]
# Sugar's config.json beside assets/: the fields `sugar launch` reads, from the spec
cfg = json.load(open(f"{d}/metaplex/config.json"))
assert sorted(os.listdir(f"{d}/metaplex")) == ["assets", "config.json"]
assert list(cfg) == ["tokenStandard", "number", "symbol", "sellerFeeBasisPoints", "isMutable",
                     "isSequential", "creators", "uploadMethod", "ruleSet", "awsConfig",
                     "sdriveApiKey", "pinataConfig", "hiddenSettings", "guards",
                     "maxEditionSupply"], list(cfg)
assert cfg["tokenStandard"] == "nft" and cfg["number"] == 60 and cfg["symbol"] == "OWLS", cfg
assert cfg["sellerFeeBasisPoints"] == 500 and cfg["isMutable"] is True and cfg["isSequential"] is False
assert cfg["creators"] == [{"address": "11111111111111111111111111111111", "share": 70},
                           {"address": "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA", "share": 30}]
assert cfg["uploadMethod"] == "bundlr"
assert all(cfg[k] is None for k in ("ruleSet", "awsConfig", "sdriveApiKey", "pinataConfig",
                                    "hiddenSettings", "guards", "maxEditionSupply")), cfg
col = json.load(open(f"{a}/collection.json"))
assert col["name"] == "Pixel Owls" and col["image"] == "collection.png"
assert col["properties"]["files"] == [{"uri": "collection.png", "type": "image/png"}]
# provenance, recomputed here: sha256 of each image, hex concatenated in token id order, sha256
hs = [hashlib.sha256(open(f"{d}/images/{i}.png", "rb").read()).hexdigest() for i in range(1, 61)]
prov = json.load(open(f"{d}/provenance.json"))
assert [x["sha256"] for x in prov["images"]] == hs
assert [x["file"] for x in prov["images"]] == [f"images/{i}.png" for i in range(1, 61)]
assert prov["provenance_hash"] == hashlib.sha256("".join(hs).encode()).hexdigest()
assert prov["starting_index"] is None and "BAYC" in prov["method"]
# CAR files listed with their hashes
cars = {e["name"]: e["sha256"] for e in ipfs["entries"] if "sha256" in e}
for name in ("car/images.car", "car/metadata.car", "car/erc1155-metadata.car"):
    assert hashlib.sha256(open(f"{d}/{name}", "rb").read()).hexdigest() == cars[name], name
print("ok")
PY
expect_contains "targets, contract, metaplex, provenance" "$T/py" ok
[ -s "$T/py" ] && grep -v '^ok$' "$T/py" | head -20

# CIDs and CARs equal to the npm importer's (ipfs-unixfs-importer + @ipld/car)
ORACLE=$KILN_SRC/tests/ipfs
oracle_cars() { # path:name ... (a path in dist/, its ipfs.json entry and car/<name>.car)
	for f in "$@"; do
		path=${f%%:*} name=${f##*:}
		node "$ORACLE/oracle.mjs" --car "$T/$name.car" "$P/dist/$path" | tail -1 | cut -d' ' -f1 >"$T/oc"
		want=$($PY -c "import json,sys; print([e['cid'] for e in json.load(open('$P/dist/ipfs.json'))['entries'] if e['name']=='$name'][0])")
		expect_eq "$name CID equals the npm importer's" "$(cat "$T/oc")" "$want"
		expect_eq "$name CAR byte-identical to @ipld/car's" \
			"$(cmp -s "$T/$name.car" "$P/dist/car/$name.car" && echo same)" same
	done
}
if command -v node >/dev/null 2>&1 && [ -d "$ORACLE/node_modules" ]; then
	oracle_cars images:images metadata:metadata erc1155/metadata:erc1155-metadata
	node "$ORACLE/oracle.mjs" "$P/dist/contract.json" | tail -1 | cut -d' ' -f1 >"$T/oc"
	expect_eq "contract.json CID" "$(cat "$T/oc")" \
		"$($PY -c "import json; print(json.load(open('$P/dist/ipfs.json'))['contract_uri'][7:])")"
else
	fail "CIDs against the npm oracle: node or tests/ipfs/node_modules missing (scripts/deps.sh --test installs node and npm; ctest's ipfs/npm_oracle runs npm ci)"
fi

# kiln verify: the release matches its records
"$KILN" -C "$P" verify >"$T/v" 2>&1
expect_eq "verify exit" $? 0
expect_contains "verify says it matches" "$T/v" "matches"

# same catalog, same bytes: release again with --force, and a second project from the same spec
cp -a "$P/dist" "$T/dist1"
"$KILN" -C "$P" release --force --car -q
expect_eq "second release exit" $? 0
expect_eq "same catalog gives identical dist bytes" \
	"$(diff -r "$T/dist1" "$P/dist" >/dev/null && echo same)" same
mkdir -p "$T/owls2"
cp -r "$P/kiln.yaml" "$P/layers" "$P/legendaries" "$T/owls2/"
"$KILN" -C "$T/owls2" build -q && "$KILN" -C "$T/owls2" release --force --car -q
expect_eq "a fresh project from the same spec gives identical dist bytes" \
	"$(diff -r "$T/dist1" "$T/owls2/dist" >/dev/null && echo same)" same
# nothing changed: a no-op that still reports the CIDs
"$KILN" -C "$P" release --car >"$T/noop" 2>&1
expect_contains "up to date" "$T/noop" "up to date"
expect_contains "up to date still prints the CIDs" "$T/noop" "images     ipfs://bafy"
# a release event with the CIDs in the catalog
"$KILN" -C "$P" release --force --json | tail -1 >"$T/sum"
expect_contains "json summary has the images CID" "$T/sum" '"images_cid":"bafy'
$PY - "$P/.kiln/catalog.db" <<'PY' >"$T/ev" 2>&1
import json, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
rows = db.execute("select detail from events where kind='release' order by rowid").fetchall()
d = json.loads(rows[-1][0])
assert d["images_cid"].startswith("bafy") and len(d["provenance_hash"]) == 64, d
print("ok")
PY
expect_contains "release event records CIDs and provenance" "$T/ev" ok

# --car makes a CAR for everything an ipfs:// URI of the release names, the pre-reveal set
# included: every CID entry in ipfs.json has one, equal to @ipld/car's
$PY - "$P/kiln.yaml" <<'PY'
import sys
p = sys.argv[1]
s = open(p).read().replace("  start_id: 1\n", "  start_id: 1\n  reveal: {hidden_image: layers/Background/void.png}\n")
open(p, "w").write(s)
PY
"$KILN" -C "$P" build -q >/dev/null 2>&1 && "$KILN" -C "$P" release --car --starting-index 3 -q
expect_eq "release --car with a reveal" $? 0
$PY - "$P/dist" <<'PY' >"$T/py" 2>&1
import hashlib, json, sys
d = sys.argv[1]
ipfs = json.load(open(f"{d}/ipfs.json"))
cids = [e["name"] for e in ipfs["entries"] if "cid" in e]
cars = {e["name"]: e["sha256"] for e in ipfs["entries"] if "sha256" in e}
assert sorted(cids) == sorted(["images", "contract_images", "contract", "hidden_image",
                               "prereveal-metadata", "metadata", "erc1155-metadata"]), cids
for n in cids:
    assert f"car/{n}.car" in cars, (n, cars)
    assert hashlib.sha256(open(f"{d}/car/{n}.car", "rb").read()).hexdigest() == cars[f"car/{n}.car"]
print("ok")
PY
expect_contains "a CAR for every CID in ipfs.json" "$T/py" ok
grep -v '^ok$' "$T/py" | head
if command -v node >/dev/null 2>&1 && [ -d "$ORACLE/node_modules" ]; then
	oracle_cars contract:contract_images contract.json:contract prereveal/hidden.png:hidden_image \
		prereveal/metadata:prereveal-metadata
fi
"$KILN" -C "$P" verify -q >"$T/v" 2>&1
expect_eq "verify the release with every CAR" $? 0
finish
