# kiln verify covers every file a release writes: dist/manifest.sha256 (sha256sum's format)
# names each changed, missing or added file, and the targets are checked against each other
# so that a forged file is still caught when the manifest is rewritten with it; the release
# hash (the manifest's SHA-256) catches the rest when the published one is given.
. "$(dirname "$0")/lib.sh"
P=$T/owls
owls "$P"
set_metadata "$P" <<'YAML'
metadata:
  name: "Pixel Owl #{id}"
  start_id: 1
  targets: [erc721, erc1155, metaplex]
  metaplex:
    seller_fee_basis_points: 500
    creators:
      - {address: "11111111111111111111111111111111", share: 70}
      - {address: "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA", share: 30}
    collection: {name: Pixel Owls, image: legendaries/founder.png}
YAML
"$KILN" -C "$P" build -q >"$T/out" 2>&1
expect_eq "build" $? 0
"$KILN" -C "$P" release --force >"$T/rel" 2>&1
expect_eq "release" $? 0
D=$P/dist
HASH=$(sha256sum "$D/manifest.sha256" | cut -c1-64)
expect_contains "release prints the release hash" "$T/rel" "release    $HASH"

# the manifest: every file but itself, sorted, checkable with sha256sum alone
(cd "$D" && sha256sum -c --strict --quiet manifest.sha256) >"$T/c" 2>&1
expect_eq "sha256sum -c checks the manifest" $? 0
expect_eq "the manifest lists every file" \
	"$(cd "$D" && find . -type f ! -path ./manifest.sha256 | sed 's|^\./||' | LC_ALL=C sort)" \
	"$(cut -c67- "$D/manifest.sha256")"
"$KILN" verify "$D" >"$T/v" 2>&1
expect_eq "verify a fresh release" $? 0
expect_contains "verify prints the release hash" "$T/v" "release    $HASH"
"$KILN" verify --release-hash "$HASH" "$D" >"$T/v" 2>&1
expect_eq "verify against the published release hash" $? 0

cp -a "$D" "$T/good"
restore() { rm -rf "$D"; cp -a "$T/good" "$D"; }
# the manifest rewritten to match whatever is in dist/ now, as a forger would
remanifest() {
	(cd "$D" && find . -type f ! -path ./manifest.sha256 | sed 's|^\./||' | LC_ALL=C sort |
		while read -r f; do sha256sum "$f"; done >"$T/m" && mv "$T/m" manifest.sha256)
}
check() { # what expected-text [expected-text-with-manifest-rewritten]
	"$KILN" verify "$D" >"$T/v" 2>&1
	expect_eq "$1: exit 1" $? 1
	expect_contains "$1: named" "$T/v" "$2"
	if [ $# -ge 3 ]; then
		remanifest
		"$KILN" verify "$D" >"$T/v" 2>&1
		expect_eq "$1, manifest rewritten: exit 1" $? 1
		expect_contains "$1, manifest rewritten: caught" "$T/v" "$3"
		"$KILN" verify --release-hash "$HASH" "$D" >"$T/v" 2>&1
		expect_contains "$1, manifest rewritten: the release hash differs" "$T/v" \
			"MISMATCH release hash: the files give"
	fi
	restore
}

# a forged name and creator in one Metaplex asset
$PY - "$D/metaplex/assets/3.json" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
m["name"] = "Forged Owl"
m["properties"]["creators"][0]["address"] = "SysvarRent111111111111111111111111111111111"
json.dump(m, open(sys.argv[1], "w"), indent=2)
PY
check "forged Metaplex asset" "MISMATCH metaplex/assets/3.json: changed: sha256 is" \
	"metaplex/assets/3.json: symbol, seller_fee_basis_points or creators differ from metaplex/config.json"
# only the name: caught against the token's ERC-721 JSON
sed -i 's/"name": "Pixel Owl #4"/"name": "Pixel Owl #99"/' "$D/metaplex/assets/3.json"
check "forged Metaplex name" "metaplex/assets/3.json: changed" \
	"metaplex/assets/3.json: name or description differ from metadata/4.json"
# another fee in Sugar's config
sed -i 's/"sellerFeeBasisPoints": 500/"sellerFeeBasisPoints": 9000/' "$D/metaplex/config.json"
check "changed fee" "MISMATCH metaplex/config.json: changed" \
	"metaplex/assets/0.json: symbol, seller_fee_basis_points or creators differ from metaplex/config.json"
# an extra asset
cp "$D/metaplex/assets/3.json" "$D/metaplex/assets/77.json"
check "extra asset" "MISMATCH metaplex/assets/77.json: not in manifest.sha256 (a file was added)" \
	"metaplex/assets/77.json: not part of Sugar's layout"
# a forged HashLips _metadata.json
$PY - "$D/_metadata.json" <<'PY'
import json, sys
a = json.load(open(sys.argv[1]))
a[5]["attributes"][0]["value"] = "Gold"
json.dump(a, open(sys.argv[1], "w"), indent=2)
PY
check "forged _metadata.json" "MISMATCH _metadata.json: changed" \
	"_metadata.json: token 5 is not metadata/6.json"
# a removed file, a thumbnail-like extra anywhere, the records themselves
rm "$D/metaplex/assets/collection.json"
check "removed file" "MISMATCH metaplex/assets/collection.json: missing (manifest.sha256 lists it)"
mkdir "$D/extra" && echo x >"$D/extra/notes.txt"
check "added folder" "MISMATCH extra/notes.txt: not in manifest.sha256"
sed -i 's/"reveal": "done"/"reveal": "later"/' "$D/provenance.json"
check "edited provenance.json" "MISMATCH provenance.json: changed"
rm "$D/manifest.sha256"
check "no manifest" "MISMATCH manifest.sha256: missing"
# a manifest reordered by hand: same lines, other bytes
sort -r "$D/manifest.sha256" >"$T/m" && mv "$T/m" "$D/manifest.sha256"
check "manifest out of order" "manifest.sha256: not as kiln writes it"
"$KILN" verify --release-hash xyz "$D" >/dev/null 2>"$T/err"
expect_eq "a malformed release hash is bad usage" $? 2

# verify --json names the release hash
"$KILN" verify --json "$D" >"$T/v" 2>&1
expect_contains "json has the release hash" "$T/v" "\"release_hash\":\"$HASH\""
# the no-op release still reports the release hash; the catalog's release event records it
"$KILN" -C "$P" release >"$T/noop" 2>&1
expect_contains "up to date still prints the release hash" "$T/noop" "release    $HASH"
$PY - "$P/.kiln/catalog.db" "$HASH" <<'PY' >"$T/ev" 2>&1
import json, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
d = json.loads(db.execute("select detail from events where kind='release' order by rowid desc").fetchone()[0])
assert d["release_hash"] == sys.argv[2], d
print("ok")
PY
expect_contains "release event records the release hash" "$T/ev" ok
finish
