# QA of the polish SVGs (lib/qa/svg.c): owls vectorized (pixels) with the SVG beside each PNG,
# then four SVGs in the store damaged as a bad vectorizer or disk would: token 2 not XML,
# token 3 a well-formed SVG of the right size drawing nothing, token 4 drawn at another size
# (size and viewBox), token 5 padded past qa.max_file_size. `kiln qa` names each by token and
# check (svg.malformed, svg.blank, svg.dimensions, svg.file_size) and exits 1; the release
# gate refuses; the untouched tokens have no finding. Then image.format svg: an SVG image with
# a wrong viewBox is an svg.dimensions finding too.
. "$(dirname "$0")/lib.sh"
P=$T/p
owls "$P"
sed -i 's/size: 60,/size: 6,/; s/count: 8,/count: 1,/g; s/count: 4,/count: 1,/; s/count: 3,/count: 1,/g' "$P/kiln.yaml"
printf '%s\n' 'qa: {max_file_size: 20000}' 'polish: [{vectorize: {mode: pixels}}]' >>"$P/kiln.yaml"
DB=$P/.kiln/catalog.db
q() { sqlite3 "$DB" "$1"; }
"$KILN" -C "$P" build -q >"$T/out" 2>&1
expect_eq "build" $? 0
cat "$T/out"
"$KILN" -C "$P" qa --json >"$T/qa0" 2>&1
expect_eq "qa of good SVGs" $? 0
store() { # id: the store file of the token's SVG
	s=$(q "select output from polish_steps where item_id = $1 and kind = 'vectorize'")
	echo "$P/.kiln/store/$(echo "$s" | cut -c1-2)/$s"
}
for id in 2 3 4 5; do chmod u+w "$(store $id)"; done
printf 'not <svg at all' >"$(store 2)"
printf '<svg xmlns="http://www.w3.org/2000/svg" width="256" height="256" viewBox="0 0 256 256"></svg>\n' >"$(store 3)"
sed -i 's/width="256" height="256" viewBox="0 0 256 256"/width="128" height="128" viewBox="0 0 128 128"/' "$(store 4)"
f5=$(store 5)
$PY -c "import sys; p = sys.argv[1]; s = open(p).read(); open(p, 'w').write(s.replace('</svg>', '<!--' + 'x' * 30000 + '--></svg>'))" "$f5"
"$KILN" -C "$P" qa --json >"$T/qa" 2>&1
expect_eq "qa with damaged SVGs" $? 1
$PY - "$T/qa" <<'PY' >"$T/py" 2>&1
import json, sys
r = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
got = sorted((f["check"], f["file"]) for f in r["findings"] if f["check"].startswith("svg."))
want = [("svg.blank", "3.svg"), ("svg.dimensions", "4.svg"), ("svg.dimensions", "4.svg"),
        ("svg.file_size", "5.svg"), ("svg.malformed", "2.svg")]
assert got == want, got
print("ok")
PY
expect_contains "each SVG finding by token" "$T/py" ok
grep -v '^ok$' "$T/py" | head
"$KILN" -C "$P" ls --json >/dev/null 2>&1
"$KILN" -C "$P" show 3 >"$T/show3" 2>&1
expect_contains "kiln show names the finding on its token" "$T/show3" "svg.blank"
"$KILN" -C "$P" release -q >"$T/rel" 2>&1
expect_eq "release gate" $? 1
expect_contains "the gate names QA" "$T/rel" "QA"
# image.format svg: the SVG is the image; a viewBox that is not the image's size is found
Q=$T/q
owls "$Q"
sed -i 's/size: 60,/size: 3,/; s/count: 8,/count: 1,/g; s/count: 4,/count: 1,/; s/count: 3,/count: 1,/g' "$Q/kiln.yaml"
sed -i 's/^image: {width: 256, height: 256, format: png}/image: {width: 256, height: 256, format: svg}/' "$Q/kiln.yaml"
echo 'polish: [{vectorize: {mode: pixels}}]' >>"$Q/kiln.yaml"
"$KILN" -C "$Q" build -q >"$T/out2" 2>&1
expect_eq "build svg images" $? 0
DB=$Q/.kiln/catalog.db
P=$Q
f=$(store 1)
chmod u+w "$f"
sed -i 's/viewBox="0 0 256 256"/viewBox="0 0 256 255"/' "$f"
"$KILN" -C "$Q" qa --json >"$T/qa2" 2>&1
expect_eq "qa of an SVG image with a wrong viewBox" $? 1
expect_contains "svg.dimensions" "$T/qa2" '"check":"svg.dimensions","severity":"error","file":"1.svg"'
finish
