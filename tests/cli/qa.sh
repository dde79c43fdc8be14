# kiln qa: a clean project passes; seeded faults in a collection folder are each caught;
# reports (--json, --junit, --html); severities from kiln.yaml; results in the catalog.
. "$(dirname "$0")/lib.sh"
P=$T/owls
owls "$P"
"$KILN" -C "$P" build -q || fail "build"
"$KILN" -C "$P" qa --json="$T/qa.json" --junit "$T/junit.xml" --html "$T/html" -q
expect_eq "clean project passes" $? 0
$PY - "$T/qa.json" "$T/junit.xml" <<'PY' >"$T/py" 2>&1
import json, sys, xml.etree.ElementTree as ET
r = json.load(open(sys.argv[1]))
assert r["images"] == 60 and r["errors"] == 0, r
t = ET.parse(sys.argv[2]).getroot()
cases = t.findall(".//testcase")
assert len(cases) >= 60 * 12, len(cases)
assert not t.findall(".//failure")
print("ok")
PY
expect_contains "json and junit reports" "$T/py" ok
[ -f "$T/html/index.html" ] && ok || fail "html report written"
sqlite3 "$P/.kiln/catalog.db" "select count(*) from events where kind='qa'" >"$T/n"
expect_eq "qa recorded in the catalog (by kiln build, then by kiln qa)" "$(cat "$T/n")" 2
# severities from kiln.yaml
printf 'qa:\n  checks: {image.near_duplicate: off}\n' >>"$P/kiln.yaml"
"$KILN" -C "$P" qa --json >"$T/q2.json"
expect_eq "no near-duplicate findings when off" "$(grep -c near_duplicate "$T/q2.json")" 0
# the provenance hash a release declares is recomputed
R=$T/prov
cp -r "$P/dist" "$R"
"$KILN" qa "$R" -q
expect_eq "an intact release's provenance passes" $? 0
H=$($PY -c "import json,sys; print(json.load(open(sys.argv[1]))['provenance_hash'])" "$R/provenance.json")
"$KILN" qa "$R" --provenance "$H" -q
expect_eq "--provenance over the images in id order" $? 0
"$KILN" qa "$R" --provenance "$(printf '%064d' 0)" --json >"$T/pv0.json"
expect_eq "a wrong declared hash fails" $? 1
expect_contains "names the declaration" "$T/pv0.json" '"file":"--provenance"'
cp "$R/images/3.png" "$T/3.png"
cp "$R/images/4.png" "$R/images/3.png" && cp "$T/3.png" "$R/images/4.png"
"$KILN" qa "$R" --near off --json >"$T/pv.json"
expect_eq "swapped images fail the provenance" $? 1
$PY - "$T/pv.json" <<'PY' >"$T/py" 2>&1
import json, sys
r = json.load(open(sys.argv[1]))
files = [f["file"] for f in r["findings"] if f["check"] == "collection.provenance"]
assert len(files) == 3 and "images/3.png" in files and "images/4.png" in files, files
assert any(x.endswith("provenance.json") for x in files), files
print("ok")
PY
expect_contains "each changed image and the hash are named" "$T/py" ok
"$KILN" qa "$R" --provenance nothex >"$T/o" 2>&1
expect_eq "a malformed --provenance is bad usage" $? 2
# seeded faults in a copy of dist/
D=$T/dist
cp -r "$P/dist" "$D"
head -c 300 "$D/images/3.png" >"$T/t.png" && mv "$T/t.png" "$D/images/3.png"
cp "$D/images/1.png" "$D/images/7.png"
$PY - "$D" <<'PY'
import sys
from PIL import Image
d = sys.argv[1]
Image.new("RGBA", (256, 256), (0, 0, 0, 255)).save(d + "/images/5.png")
Image.open(d + "/images/9.png").resize((128, 128)).save(d + "/images/9.png")
Image.new("RGBA", (256, 256), (90, 90, 200, 255)).save(d + "/images/11.png")
open(d + "/metadata/4.json", "w").write('{"name": "x", ')
PY
rm "$D/images/13.png"
"$KILN" qa "$D" --width 256 --height 256 --json >"$T/f.json"
expect_eq "faults fail the gate" $? 1
for check in image.decode image.duplicate image.black image.dimensions image.blank image.missing token.json_parse; do
	expect_contains "caught $check" "$T/f.json" "\"check\":\"$check\""
done
$PY - "$T/f.json" <<'PY' >"$T/py" 2>&1
import json, sys
r = json.load(open(sys.argv[1]))
by = {}
for f in r["findings"]:
    by.setdefault(f["check"], set()).add(f.get("file"))
assert by["image.decode"] == {"3.png"}, by["image.decode"]
assert by["image.duplicate"] == {"7.png"}, by["image.duplicate"]
assert by["image.black"] == {"5.png"}, by["image.black"]
assert by["image.dimensions"] == {"9.png"}, by["image.dimensions"]
assert by["image.blank"] == {"11.png"}, by["image.blank"]
print("ok")
PY
expect_contains "each fault on its own token" "$T/py" ok
# a token that fails QA is not released unless told
$PY -c "
from PIL import Image
Image.new('RGBA', (256, 256), (0, 0, 0, 255)).save('$P/legendaries/founder.png')
" 2>/dev/null
printf '\n' >>"$P/kiln.yaml"
"$KILN" -C "$P" build -q >/dev/null 2>&1
"$KILN" -C "$P" qa -q
expect_eq "qa fails on a broken layer" $? 1
"$KILN" -C "$P" release --force >"$T/rel" 2>&1
expect_eq "release refuses tokens that failed qa" $? 1
expect_contains "release says how to override" "$T/rel" "--allow-qa-failures"
"$KILN" -C "$P" release --force --allow-qa-failures -q
expect_eq "release with --allow-qa-failures" $? 0
finish
