# kiln qa as the release gate (issue 6 audit): the reveal mapping, token id 0, verdicts tied
# to the image judged, collection-level errors, JUnit as CI reads it, image URIs, standalone
# folder checks, dHash, dist/'s other outputs.
. "$(dirname "$0")/lib.sh"
P=$T/owls
owls "$P"
set_metadata "$P" <<'YAML'
metadata: {name: "Pixel Owl #{id}", start_id: 0, targets: [erc721, erc1155, metaplex]}
YAML
"$KILN" -C "$P" build -q >"$T/out" 2>&1 || fail "build: $(cat "$T/out")"
"$KILN" -C "$P" release --force --starting-index 7 -q >"$T/out" 2>&1
expect_eq "release --starting-index 7" $? 0
# 1. the reveal mapping: token t shows image (t + 7) mod 60
"$KILN" qa "$P/dist" --json >"$T/r.json"
expect_eq "qa of a revealed dist/ passes" $? 0
expect_eq "no image_mismatch after a reveal" "$(grep -c image_mismatch "$T/r.json")" 0
"$KILN" -C "$P" qa -q
expect_eq "project qa after a reveal passes" $? 0
"$KILN" -C "$P" release --force -q >"$T/out" 2>&1
expect_eq "release after qa of a revealed dist/" $? 0
cp -r "$P/dist" "$T/swap"
$PY - "$T/swap/metadata" <<'PY'
import json, sys
d = sys.argv[1]
a, b = json.load(open(d + "/3.json")), json.load(open(d + "/4.json"))
a["image"], b["image"] = b["image"], a["image"]
json.dump(a, open(d + "/3.json", "w")); json.dump(b, open(d + "/4.json", "w"))
PY
"$KILN" qa "$T/swap" --json >"$T/r.json"
expect_eq "swapped image URIs fail" $? 1
expect_contains "names the reveal" "$T/r.json" "starting index 7"
# 6. image URIs: the folder's CID, the number, the file's exact extension
$PY - "$T/swap/metadata" <<'PY'
import json, sys
d = sys.argv[1]
def edit(n, f):
    j = json.load(open("%s/%d.json" % (d, n))); j["image"] = f(j["image"]); json.dump(j, open("%s/%d.json" % (d, n), "w"))
edit(10, lambda u: "ipfs://bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi/" + u.rsplit("/", 1)[1])
edit(11, lambda u: u[:-4] + ".jpg")
edit(12, lambda u: u[:-4])
PY
"$KILN" qa "$T/swap" --json >"$T/r.json"
$PY - "$T/r.json" <<'PY' >"$T/py" 2>&1
import json, sys
r = json.load(open(sys.argv[1]))
by = {}
for f in r["findings"]:
    by.setdefault(f["check"], set()).add(f["file"])
assert by.get("erc721.image_base") == {"10.json"}, by
assert by.get("erc721.image_extension") == {"11.json", "12.json"}, by
print("ok")
PY
expect_contains "wrong CID, .jpg for a png, no extension" "$T/py" ok
# 9. dist/'s other outputs: Sugar assets and ERC-1155 files
$PY - "$P/dist" <<'PY'
import json, os, sys
d = sys.argv[1]
j = json.load(open(d + "/metaplex/assets/3.json")); j["name"] = "x" * 40
json.dump(j, open(d + "/metaplex/assets/3.json", "w"))
e = d + "/erc1155/metadata"
f = sorted(os.listdir(e))[5]
os.rename(e + "/" + f, e + "/" + f.upper())
PY
"$KILN" -C "$P" qa --json >"$T/r.json"
expect_eq "project qa checks dist/metaplex and dist/erc1155" $? 1
expect_contains "metaplex assets checked" "$T/r.json" '"file":"metaplex/assets/3.json"'
expect_contains "erc1155 names checked" "$T/r.json" '"check":"erc1155.file_name"'
"$KILN" -C "$P" release --force -q >"$T/out" 2>&1
expect_eq "findings on dist/ do not block the release that rewrites it" $? 0
# 2. token 0 is a real id; 3. verdicts are tied to the image judged
SHA0=$(sqlite3 "$P/.kiln/catalog.db" "select image from items where id = 0")
F0=$P/.kiln/store/$(echo "$SHA0" | cut -c1-2)/$SHA0
[ -f "$F0" ] || fail "store file of item 0 at $F0"
cp "$F0" "$T/keep0" && chmod u+w "$F0"
$PY -c "
from PIL import Image
Image.new('RGBA', (256, 256), (0, 0, 0, 255)).save('$F0', 'PNG')"
"$KILN" -C "$P" qa -q --junit "$T/j0.xml"
expect_eq "qa fails on token 0" $? 1
"$KILN" -C "$P" release --force >"$T/rel" 2>&1
expect_eq "release refuses token 0" $? 1
expect_contains "names token 0" "$T/rel" "failed QA (0)"
"$KILN" -C "$P" show 0 >"$T/show"
expect_contains "kiln show says token 0 failed" "$T/show" "image.black"
"$KILN" -C "$P" status >"$T/status"
expect_contains "kiln status counts it" "$T/status" "1 token failed"
cp "$T/keep0" "$F0"
SHA1=$(sqlite3 "$P/.kiln/catalog.db" "select image from items where id = 1")
sqlite3 "$P/.kiln/catalog.db" "update items set image = '$SHA1' where id = 0"
"$KILN" -C "$P" status >"$T/status"
expect_contains "a stale verdict is shown as stale" "$T/status" "stale"
"$KILN" -C "$P" release --force >"$T/rel" 2>&1
grep -q "failed QA (0)" "$T/rel" && fail "a re-rendered token is still blocked by its stale verdict" || ok
sqlite3 "$P/.kiln/catalog.db" "update items set image = '$SHA0' where id = 0"
sqlite3 "$P/.kiln/catalog.db" "delete from qa_findings; insert into qa_findings(item_id, check_id, severity, file, path, message, origin, plan) values (NULL, 'collection.unique', 'error', 'catalog', '', 'tokens 3 and 4 have the same traits', 'catalog', (select value from meta where key = 'plan_event'))"
"$KILN" -C "$P" release --force >"$T/rel" 2>&1
expect_eq "a collection-level error blocks the release" $? 1
expect_contains "and says so" "$T/rel" "collection-level"
"$KILN" -C "$P" release --force --allow-qa-failures -q
expect_eq "unless --allow-qa-failures" $? 0
# 4. JUnit as CI reads it: every error finding is a failure in its own test case
D=$T/faults
cp -r "$P/dist" "$D"
rm -rf "$D/metaplex" "$D/erc1155" "$D/provenance.json"
cp "$D/images/1.png" "$D/images/7.png"
rm "$D/images/13.png" "$D/metadata/20.json"
$PY - "$D" <<'PY'
import json, sys
from PIL import Image
d = sys.argv[1]
Image.new("RGBA", (256, 256), (0, 0, 0, 255)).save(d + "/images/5.png")
Image.open(d + "/images/9.png").resize((128, 128)).save(d + "/images/9.png")
Image.open(d + "/images/4.png").convert("RGB").save(d + "/images/4.png", "JPEG")
j = json.load(open(d + "/metadata/6.json")); j["attributes"] = json.load(open(d + "/metadata/8.json"))["attributes"]
json.dump(j, open(d + "/metadata/6.json", "w"))
open(d + "/metadata/2.json", "w").write('{"name": ')
PY
"$KILN" qa "$D" --json="$T/f.json" --junit "$T/f.xml" -q
expect_eq "faults fail" $? 1
$PY - "$T/f.json" "$T/f.xml" <<'PY' >"$T/py" 2>&1
import json, sys, xml.etree.ElementTree as ET
r = json.load(open(sys.argv[1]))
t = ET.parse(sys.argv[2]).getroot()
errors = [f for f in r["findings"] if f["severity"] == "error"]
fails = t.findall(".//failure")
cases = t.findall(".//testcase")
assert len(fails) == len(errors) == r["errors"], (len(fails), len(errors))
assert int(t.get("failures")) == len(errors), t.get("failures")
suite = t.find("testsuite")
assert int(suite.get("failures")) == len(errors) and int(suite.get("tests")) == len(cases)
assert all(len(c.findall("failure")) <= 1 for c in cases)
gap = [c for c in cases if c.get("classname") == "collection" and c.get("name") == "erc721.numbering_gap"]
assert gap and gap[0].find("failure") is not None, "numbering gap"
t13 = [c for c in cases if c.get("classname") == "token.13" and c.get("name") == "image.missing"]
assert t13 and t13[0].find("failure") is not None, "json-only token 13"
by = {}
for f in r["findings"]:
    by.setdefault(f["check"], set()).add(f["file"])
# 7. standalone folder checks
assert by["image.dimensions"] == {"9.png"}, by.get("image.dimensions")
assert by["image.format"] == {"4.png"}, by.get("image.format")
assert "6.json" in by["collection.unique"] or "8.json" in by["collection.unique"], by.get("collection.unique")
print("ok")
PY
expect_contains "junit failures = error findings, one case each; folder checks" "$T/py" ok
"$KILN" qa "$D" --width abc >"$T/o" 2>&1
expect_eq "--width abc" $? 2
expect_contains "says why" "$T/o" "--width takes a positive number"
"$KILN" qa "$D" --width -5 >"$T/o" 2>&1
expect_eq "--width -5" $? 2
# the qa: block with --config; unknown check ids are spec errors
cp "$P/kiln.yaml" "$T/cfg.yaml" && cp -r "$P/layers" "$P/legendaries" "$T/"
printf 'qa:\n  checks: {image.dimensions: off, image.format: warning}\n' >>"$T/cfg.yaml"
"$KILN" qa "$D" --config "$T/cfg.yaml" --json >"$T/c.json"
expect_eq "no dimension findings with --config" "$(grep -c '"image.dimensions"' "$T/c.json")" 0
expect_contains "severity from --config" "$T/c.json" '"check":"image.format","severity":"warning"'
printf 'qa:\n  checks:\n    image.near_duplicat: off\n' >>"$P/kiln.yaml"
"$KILN" -C "$P" qa -q >"$T/o" 2>&1
expect_eq "an unknown check id is a spec error" $? 2
expect_contains "with the place" "$T/o" "kiln.yaml:"
expect_contains "and a suggestion" "$T/o" "did you mean 'image.near_duplicate'"
# the Sugar folder's collection image is decoded too
S=$T/sugar
cp -r "$T/swap/metaplex/assets" "$S" 2>/dev/null || cp -r "$P/dist/metaplex/assets" "$S"
head -c 100 "$S/0.png" >"$S/collection.png"
"$KILN" qa "$S" --json >"$T/s.json"
expect_contains "collection image decoded" "$T/s.json" '"check":"image.decode","severity":"error","file":"collection.png"'
# 8. dHash near duplicates
"$KILN" qa "$S" --near off --near-dhash 64 --json >"$T/s.json" 2>&1
expect_eq "--near-dhash range" $? 2
"$KILN" qa "$S" --near off --near-dhash 32 --near-measure phash --json >"$T/s.json"
expect_contains "dHash finds near duplicates" "$T/s.json" "dHash in"
finish
