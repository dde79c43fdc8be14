# The polish stage on the owls example, end to end through the command: upscale x2 nearest
# (equal, pixel for pixel, to `vips resize --kernel nearest` of the render) and lanczos (to
# `vips resize --kernel lanczos3`), pixels vectorize (rsvg-convert's raster of the SVG equals
# the PNG), a second run makes nothing, kill -9 mid-polish and the run after finishes without
# making a step twice, `kiln build` releases the polished images (QA expects the upscaled
# size), a spec change remakes only the steps after it (no double upscale), and artists'
# edits imported for three tokens (checked, recorded, the vectorize made again from them;
# re-render makes the edit stale: the token fails, reset drops it).
. "$(dirname "$0")/lib.sh"
CMP="$PY $KILN_SRC/tests/polish/pngcmp.py"
P=$T/p
owls "$P"
DB=$P/.kiln/catalog.db
st() { echo "$P/.kiln/store/$(echo "$1" | cut -c1-2)/$1"; }
q() { sqlite3 "$DB" "$1"; }
cat >>"$P/kiln.yaml" <<'EOF'
polish:
  - upscale: {factor: 2, method: nearest}
  - vectorize: {mode: pixels}
EOF
"$KILN" -C "$P" plan -q && "$KILN" -C "$P" render -q || fail "plan/render"
"$KILN" -C "$P" polish --json -j 2 >"$T/j1"
expect_eq "polish exit" $? 0
expect_contains "summary" "$T/j1" '"stage":"polish","tokens":60,"polished":60,"steps":120'
expect_eq "two steps per token" "$(q "select count(*), count(distinct item_id) from polish_steps")" "120|60"
expect_eq "upscale input is the render" \
	"$(q "select count(*) from polish_steps p join items i on i.id = p.item_id where p.step = 0 and p.input = i.image and p.kind = 'upscale'")" 60
expect_eq "vectorize input is the upscale" \
	"$(q "select count(*) from polish_steps a join polish_steps b on a.item_id = b.item_id and b.step = 1 where a.step = 0 and b.input = a.output and b.kind = 'vectorize' and b.is_image = 0")" 60
# against the readers: vips resize and librsvg
for id in 1 17 60; do
	in=$(q "select input from polish_steps where item_id = $id and step = 0")
	up=$(q "select output from polish_steps where item_id = $id and step = 0")
	svg=$(q "select output from polish_steps where item_id = $id and step = 1")
	vips resize "$(st "$in")" "$T/vr.png" 2 --kernel nearest
	$CMP "$T/vr.png" "$(st "$up")" >"$T/cmp" && ok || fail "token $id: upscale differs from vips resize: $(cat "$T/cmp")"
	rsvg-convert "$(st "$svg")" -o "$T/rs.png"
	$CMP "$T/rs.png" "$(st "$up")" >"$T/cmp" && ok || fail "token $id: SVG raster differs: $(cat "$T/cmp")"
done
"$KILN" -C "$P" polish >"$T/o2"
expect_contains "second run" "$T/o2" "nothing to do, all 60 tokens up to date"
# build: polish up to date, QA on the 512 px images, release ships them
"$KILN" -C "$P" build -q
expect_eq "build" $? 0
f1=$(q "select output from polish_steps where item_id = 1 and step = 0")
expect_eq "released image is the polished one" "$(sha256sum <"$P/dist/images/1.png" | cut -c1-64)" "$f1"
"$KILN" -C "$P" verify "$P/dist" >/dev/null
expect_eq "verify" $? 0
# the chain in dist/: read back, links checked and steps made again by kiln verify
$PY - "$P/dist/polish/1.json" "$f1" <<'PY' && ok || fail "dist/polish/1.json"
import json, sys
j = json.load(open(sys.argv[1]))
assert j["image"] == sys.argv[2] and [s["kind"] for s in j["steps"]] == ["upscale", "vectorize"], j
assert j["steps"][0]["input"] == j["render"] and j["steps"][1]["input"] == j["steps"][0]["output"]
PY
cp -r "$P/dist" "$P/dist-copy"
s8=$(q "select output from polish_steps where item_id = 8 and step = 1")
$PY - "$P/dist-copy/polish/7.json" "$s8" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
j["steps"][1]["output"] = sys.argv[2]   # another token's SVG: linked, but not what the step makes
json.dump(j, open(sys.argv[1], "w"))
PY
"$KILN" -C "$P" verify "$P/dist-copy" >"$T/v2"
expect_eq "verify a forged chain" $? 1
expect_contains "recomputed step named" "$T/v2" "polish/7.json: step 1 (vectorize) made again from its input gives another result"
rm -rf "$P/dist-copy"

# lanczos: every upscale is made again from the render (no double upscale), kill -9 mid-way
sed -i 's/method: nearest/method: lanczos/' "$P/kiln.yaml"
"$KILN" -C "$P" polish -q -j 1 &
pid=$!
sleep 0.4
kill -9 $pid 2>/dev/null
wait $pid 2>/dev/null
done1=$(q "select count(*) from polish_steps where settings like '%lanczos%'")
"$KILN" -C "$P" polish --json >"$T/j3"
expect_eq "rerun after kill" $? 0
left=$($PY -c "import json,sys
for l in open(sys.argv[1]):
    o = json.loads(l)
    if o.get('event') == 'summary': print(o['polished'])" "$T/j3")
expect_eq "the run after the kill polishes only the rest" "$((done1 + left))" 60
expect_eq "all lanczos now" "$(q "select count(*) from polish_steps where settings like '%lanczos%'")" 60
expect_eq "every upscale reads the render" \
	"$(q "select count(*) from polish_steps p join items i on i.id = p.item_id where p.step = 0 and p.input = i.image")" 60
in=$(q "select input from polish_steps where item_id = 5 and step = 0")
up=$(q "select output from polish_steps where item_id = 5 and step = 0")
vips resize "$(st "$in")" "$T/vl.png" 2 --kernel lanczos3
$CMP "$T/vl.png" "$(st "$up")" >"$T/cmp" && ok || fail "lanczos differs from vips resize: $(cat "$T/cmp")"

# artists' edits on three tokens
for id in 2 3 4; do
	"$KILN" -C "$P" polish export $id --to "$T/ex$id" >/dev/null || fail "export $id"
	[ -f "$T/ex$id/$id.png" ] && ok || fail "export $id wrote no $id.png"
	# the "edit": the other token's image (a real, different PNG of the same size)
	cp "$T/ex$id/$id.png" "$T/orig$id.png"
done
"$KILN" -C "$P" polish import 2 "$T/orig3.png" --by Ana --note "fixed the beak" --tool Aseprite >"$T/imp"
expect_eq "import" $? 0
"$KILN" -C "$P" polish import 3 "$T/orig4.png" --by Ana >/dev/null
"$KILN" -C "$P" polish import 4 "$T/orig2.png" --by Bo >/dev/null
expect_eq "three edits recorded" "$(q "select count(*) from polish_steps where kind = 'edit'")" 3
expect_eq "the edit's fields" "$(q "select made_by, tool, note, step from polish_steps where item_id = 2 and kind = 'edit'")" "Ana|Aseprite|fixed the beak|1"
expect_eq "vectorize made from the edit" \
	"$(q "select count(*) from polish_steps a join polish_steps b on a.item_id = b.item_id and b.step = 2 where a.kind = 'edit' and b.kind = 'vectorize' and b.input = a.output")" 3
"$KILN" -C "$P" show 2 >"$T/show2"
expect_contains "show prints the chain" "$T/show2" '#1 edit {"file":"orig3.png","sha256":'
expect_contains "show names the author" "$T/show2" "by Ana (Aseprite)"
# not a PNG of the size: refused, nothing recorded
vips resize "$T/orig2.png" "$T/small.png" 0.5
"$KILN" -C "$P" polish import 5 "$T/small.png" --by Ana 2>"$T/e5"
expect_eq "wrong size refused" $? 1
expect_contains "size named" "$T/e5" "the edit is 256 x 256, but the token's image is 512 x 512"
"$KILN" -C "$P" polish import 5 "$T/orig2.png" 2>"$T/e6"
expect_eq "--by required" $? 2
"$KILN" -C "$P" build -q
expect_eq "build after edits" $? 0
expect_eq "released image 2 is Ana's edit" "$(sha256sum <"$P/dist/images/2.png" | cut -c1-64)" \
	"$(sha256sum <"$T/orig3.png" | cut -c1-64)"
# a re-render under the edit: the edit is stale, the token fails; reset drops the edit
q "update items set image = (select output from polish_steps where item_id = 3 and step = 0) where id = 2" # a different render
"$KILN" -C "$P" polish 2>"$T/e7" >/dev/null
expect_eq "stale edit fails the token" $? 1
expect_contains "stale edit named" "$T/e7" "the edit by Ana"
expect_contains "hint" "$T/e7" "kiln polish reset ID"
"$KILN" -C "$P" polish reset 2 >/dev/null
expect_eq "reset" $? 0
expect_eq "no edit left on 2" "$(q "select count(*) from polish_steps where item_id = 2 and kind = 'edit'")" 0
finish
