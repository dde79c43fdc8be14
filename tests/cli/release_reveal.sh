# Reveal (pre-reveal set, --starting-index mapping in every target), kiln verify (a tampered,
# added or renamed file is found), and the spec's metadata checks with file:line:col.
. "$(dirname "$0")/lib.sh"
P=$T/owls
owls "$P"
set_metadata "$P" <<'YAML'
metadata:
  name: "Pixel Owl #{id}"
  targets: [erc721, metaplex]
  reveal: {hidden_image: layers/Background/void.png, name: "Mystery Owl #{id}"}
YAML
"$KILN" -C "$P" build >"$T/out" 2>&1
expect_eq "build with a reveal" $? 0
expect_contains "build says the reveal is pending" "$T/out" "reveal pending"
expect_eq "no token metadata before the starting index" "$(ls "$P/dist/metadata" 2>/dev/null | wc -l)" 0
expect_eq "no metaplex assets before the starting index" "$(ls -d "$P/dist/metaplex" 2>/dev/null | wc -l)" 0
$PY - "$P/dist" <<'PY' >"$T/py" 2>&1
import json, os, sys
d = sys.argv[1]
ipfs = json.load(open(f"{d}/ipfs.json"))
cids = {e["name"]: e.get("cid") for e in ipfs["entries"]}
assert sorted(os.listdir(f"{d}/prereveal/metadata")) == sorted(f"{i}.json" for i in range(1, 61))
for i in range(1, 61):
    m = json.load(open(f"{d}/prereveal/metadata/{i}.json"))
    assert m["name"] == f"Mystery Owl #{i}", m
    assert m["image"] == f"ipfs://{cids['hidden_image']}", m
assert open(f"{d}/prereveal/hidden.png", "rb").read() == open(sys.argv[1] + "/../layers/Background/void.png", "rb").read()
assert ipfs["prereveal_base_uri"] == f"ipfs://{cids['prereveal-metadata']}/"
p = json.load(open(f"{d}/provenance.json"))
assert p["starting_index"] is None and p["reveal"].startswith("pending")
print("ok")
PY
expect_contains "pre-reveal set" "$T/py" ok
grep -v '^ok$' "$T/py" | head
"$KILN" -C "$P" verify -q >"$T/v" 2>&1
expect_eq "verify before the reveal" $? 0
cp "$P/dist/provenance.json" "$T/prov_before.json"

# the reveal: token at position t shows initial item (t + 7) mod 60
"$KILN" -C "$P" release --starting-index 7 >"$T/out" 2>&1
expect_eq "release --starting-index" $? 0
expect_contains "prints the starting index" "$T/out" "starting index 7"
$PY - "$P/dist" "$T/prov_before.json" <<'PY' >"$T/py" 2>&1
import json, sys
d = sys.argv[1]
cid = [e["cid"] for e in json.load(open(f"{d}/ipfs.json"))["entries"] if e["name"] == "images"][0]
p = json.load(open(f"{d}/provenance.json"))
before = json.load(open(sys.argv[2]))
# the provenance hash was fixed before the reveal and does not change with it
assert p["provenance_hash"] == before["provenance_hash"] and p["images"] == before["images"]
assert p["starting_index"] == 7
for t in range(60):
    item = (t + 7) % 60 + 1          # ids start at 1
    m = json.load(open(f"{d}/metadata/{t + 1}.json"))
    assert m["image"] == f"ipfs://{cid}/{item}.png", (t, m["image"])
    a = open(f"{d}/metaplex/assets/{t}.png", "rb").read()
    assert a == open(f"{d}/images/{item}.png", "rb").read(), t
    mp = json.load(open(f"{d}/metaplex/assets/{t}.json"))
    assert mp["image"] == f"{t}.png"
# Sugar's hiddenSettings from metadata.reveal: name with Sugar's mint number, the pre-reveal
# JSON of the first token, a 32-character hash (the provenance hash's first half)
cids = {e["name"]: e.get("cid") for e in json.load(open(f"{d}/ipfs.json"))["entries"]}
cfg = json.load(open(f"{d}/metaplex/config.json"))
assert cfg["hiddenSettings"] == {"name": "Mystery Owl #$ID+1$",
                                 "uri": f"ipfs://{cids['prereveal-metadata']}/1.json",
                                 "hash": p["provenance_hash"][:32]}, cfg["hiddenSettings"]
assert cfg["number"] == 60 and cfg["creators"] == [] and cfg["sellerFeeBasisPoints"] == 0, cfg
print("ok")
PY
expect_contains "reveal mapping in erc721 and metaplex" "$T/py" ok
grep -v '^ok$' "$T/py" | head
"$KILN" -C "$P" verify >"$T/v" 2>&1
expect_eq "verify after the reveal" $? 0
# the starting index is recorded: a later release keeps it
"$KILN" -C "$P" release --force -q
expect_eq "starting index kept" "$($PY -c "import json; print(json.load(open('$P/dist/provenance.json'))['starting_index'])")" 7
"$KILN" -C "$P" release --starting-index 60 2>"$T/err"
expect_eq "starting index out of range" $? 2
expect_contains "says the range" "$T/err" "0..59"
"$KILN" -C "$P" release --starting-index x 2>"$T/err"
expect_eq "starting index not a number" $? 2

# once set, the starting index stays: another one needs --re-reveal; the same one is fine
"$KILN" -C "$P" release --starting-index 20 >"$T/out" 2>"$T/err"
expect_eq "a different starting index is refused" $? 2
expect_contains "names the recorded index" "$T/err" "already 7 (recorded in the catalog)"
expect_contains "says how to override" "$T/err" "--re-reveal"
expect_eq "refused: provenance.json unchanged" "$($PY -c "import json; print(json.load(open('$P/dist/provenance.json'))['starting_index'])")" 7
"$KILN" -C "$P" release --starting-index 7 -q
expect_eq "the same starting index again is fine" $? 0
"$KILN" -C "$P" release --re-reveal -q 2>"$T/err"
expect_eq "--re-reveal needs --starting-index" $? 2
"$KILN" -C "$P" release --starting-index 20 --re-reveal -q
expect_eq "--re-reveal changes it" $? 0
expect_eq "re-revealed index in provenance.json" "$($PY -c "import json; print(json.load(open('$P/dist/provenance.json'))['starting_index'])")" 20
# a catalog that lost the index still honours the released provenance.json
$PY -c "import sqlite3; db = sqlite3.connect('$P/.kiln/catalog.db'); db.execute(\"delete from meta where key='starting_index'\"); db.commit()"
"$KILN" -C "$P" release --starting-index 21 >"$T/out" 2>"$T/err"
expect_eq "refused against provenance.json" $? 2
expect_contains "names provenance.json's index" "$T/err" "already 20 (recorded in dist/provenance.json)"
"$KILN" -C "$P" release --force -q
expect_eq "release without an index keeps the released one" "$($PY -c "import json; print(json.load(open('$P/dist/provenance.json'))['starting_index'])")" 20
"$KILN" -C "$P" release --starting-index 7 --re-reveal -q
expect_eq "back to 7 with --re-reveal" "$($PY -c "import json; print(json.load(open('$P/dist/provenance.json'))['starting_index'])")" 7

# verify finds tampering: a changed image, an added image, a changed metadata file, the records
D=$P/dist
cp "$D/images/5.png" "$T/5.png"
printf 'x' >>"$D/images/5.png"
"$KILN" verify "$D" >"$T/v" 2>&1
expect_eq "verify: tampered image exits 1" $? 1
expect_contains "names the image" "$T/v" "MISMATCH images/5.png: sha256"
expect_contains "names the provenance hash" "$T/v" "MISMATCH provenance hash"
expect_contains "names the images CID" "$T/v" "MISMATCH images: images has CID"
cp "$T/5.png" "$D/images/5.png"
"$KILN" verify "$D" >/dev/null 2>&1
expect_eq "verify after restoring" $? 0
cp "$D/images/5.png" "$D/images/61.png"
"$KILN" verify "$D" >"$T/v" 2>&1
expect_eq "verify: added image exits 1" $? 1
expect_contains "names the added image" "$T/v" "images/61.png: not in provenance.json"
rm "$D/images/61.png"
sed -i 's/Pixel Owl/Pixel 0wl/' "$D/metadata/3.json"
"$KILN" verify --json "$D" >"$T/v" 2>&1
expect_eq "verify: tampered metadata exits 1" $? 1
expect_contains "json lists the metadata CID" "$T/v" '"ok":false'
expect_contains "json names the metadata folder" "$T/v" "metadata: metadata has CID"
"$KILN" -C "$P" release --force -q
# a metadata file pointing at the wrong image (CIDs recomputed to match: only the mapping is off)
$PY - "$D" <<'PY'
import json, sys
d = sys.argv[1]
m = json.load(open(f"{d}/metadata/1.json"))
m["image"] = m["image"].rsplit("/", 1)[0] + "/1.png"
json.dump(m, open(f"{d}/metadata/1.json", "w"))
PY
"$KILN" verify "$D" >"$T/v" 2>&1
expect_eq "verify: wrong reveal mapping exits 1" $? 1
expect_contains "names the token" "$T/v" "metadata/1.json: image is"
# bad usage (verify of a missing folder, a file, a folder that is not a release) and the
# spec checks of the metadata blocks are cases: tests/cases/cli/verify-*, tests/cases/metadata/
finish
