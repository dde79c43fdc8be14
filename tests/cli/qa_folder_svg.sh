# kiln qa FOLDER of a released dist/ runs the svg.* checks on the SVGs in it (issue 14): the
# owls with a pixels vectorize released (an SVG beside each PNG) pass; in a copy, an SVG that
# is not one is svg.malformed, one drawing a single colour is svg.blank, one of another size
# than the PNG beside it is svg.dimensions, each naming its file.
. "$(dirname "$0")/lib.sh"
P=$T/p
owls "$P"
sed -i 's/size: 60,/size: 12,/; s/count: 8,/count: 2,/g; s/count: 4,/count: 1,/; s/count: 3,/count: 1,/g' "$P/kiln.yaml"
echo 'polish: [{vectorize: {mode: pixels}}]' >>"$P/kiln.yaml"
"$KILN" -C "$P" build -q >"$T/out" 2>&1
expect_eq "build ($(tail -2 "$T/out"))" $? 0
"$KILN" qa "$P/dist" --standard erc721 --json >"$T/qa0" 2>&1
expect_eq "qa of the released dist/ passes ($(grep -o '"check":"[^"]*"' "$T/qa0" | sort -u | head -3))" $? 0
expect_eq "no svg finding" "$(grep -c '"svg\.' "$T/qa0")" 0
cp -r "$P/dist" "$T/d"
ls "$T/d/images" | grep '\.svg$' | sort -n | head -3 >"$T/svgs"
a=$(sed -n 1p "$T/svgs") b=$(sed -n 2p "$T/svgs") c=$(sed -n 3p "$T/svgs")
[ -n "$c" ] || fail "three SVGs released"
w=$(vipsheader -f width "$T/d/images/${a%.svg}.png")
echo 'not an svg at all' >"$T/d/images/$a"
printf '<svg xmlns="http://www.w3.org/2000/svg" width="%s" height="%s" viewBox="0 0 %s %s"><rect width="%s" height="%s" fill="#808080"/></svg>\n' \
	"$w" "$w" "$w" "$w" "$w" "$w" >"$T/d/images/$b"
printf '<svg xmlns="http://www.w3.org/2000/svg" width="7" height="5" viewBox="0 0 7 5"><rect width="3" height="5" fill="#f00"/><rect x="3" width="4" height="5" fill="#00f"/></svg>\n' >"$T/d/images/$c"
"$KILN" qa "$T/d" --standard erc721 --json >"$T/qa1" 2>&1
$PY - "$T/qa1" "$a" "$b" "$c" <<'PY' || fail "svg findings: $(grep -o '"svg[^}]*' "$T/qa1" | head -5)"
import json, sys
found = set()
for l in open(sys.argv[1]):
    l = l.strip()
    if not l.startswith("{"):
        continue
    j = json.loads(l)
    for f in j.get("findings", [j]):
        c = f.get("check", "")
        if c.startswith("svg."):
            found.add((c, f.get("file", "")))
want = {("svg.malformed", sys.argv[2]), ("svg.blank", sys.argv[3]), ("svg.dimensions", sys.argv[4])}
assert want <= found, (want, found)
PY
finish
