# kiln init --from-hashlips: layer order, names, weights; the result builds. kiln init alone.
. "$(dirname "$0")/lib.sh"
$PY "$KILN_SRC/tests/fixtures/make_hashlips.py" "$T/hl" >/dev/null || fail "fixture"
P=$T/proj
mkdir -p "$P"
"$KILN" -C "$P" init --from-hashlips "$T/hl/layers" --order Background,Shape,Eyes,Border --size 30 --name Tiles >"$T/out" 2>&1
expect_eq "import exit" $? 0
expect_contains "weights read" "$P/kiln.yaml" '{name: Blue Sky, weight: 20, file: "../hl/layers/Background/Blue Sky#20.png"}'
expect_contains "no weight means 1" "$P/kiln.yaml" '{name: Dotted, weight: 1,'
expect_contains "size" "$P/kiln.yaml" 'size: 30'
expect_contains "image size read from the layers" "$P/kiln.yaml" 'width: 64'
# the layers stay outside the project: the import allows their folder (paths.allow)
expect_contains "layers outside: allowed" "$P/kiln.yaml" 'allow: ["../hl/layers"]'
$PY - "$P/kiln.yaml" <<'PY' >"$T/py"
import sys, re
names = re.findall(r"^  - name: (.*)$", open(sys.argv[1]).read(), re.M)
print(",".join(names))
PY
expect_eq "order as given" "$(cat "$T/py")" "Background,Shape,Eyes,Border"
"$KILN" -C "$P" build -q
expect_eq "imported project builds" $? 0
expect_eq "images" "$(ls "$P/dist/images" | wc -l)" 30
# no --size: the import writes a size the planner meets with these weights, and says why
# (it wrote 94, the bound of its quick checks, which the planner refused: issue 18 item 5)
"$KILN" -C "$T/auto" init --from-hashlips "$T/hl/layers" >"$T/out" 2>&1
expect_eq "import without --size" $? 0
expect_contains "size chosen by the planner: says why" "$T/auto/kiln.yaml" "the planner finds no plan with these weights"
"$KILN" -C "$T/auto" plan >"$T/out" 2>&1
expect_eq "imported spec plans as written" $? 0
n=$(sed -n 's/^  size: \([0-9]*\) .*/\1/p' "$T/auto/kiln.yaml")
sed -i "s/^  size: $n /  size: $((n + 1)) /" "$T/auto/kiln.yaml"
"$KILN" -C "$T/auto" plan >"$T/out" 2>&1
expect_eq "one token more does not plan (the comment is true)" $? 2
# an asked size the planner cannot meet: refused, naming the size that plans
"$KILN" -C "$T/auto2" init --from-hashlips "$T/hl/layers" --size 90 >"$T/out" 2>&1
expect_eq "asked size that does not plan" $? 2
expect_contains "names the size that plans" "$T/out" "tokens do, or give the rare traits more weight"
[ ! -e "$T/auto2/kiln.yaml" ] && ok || fail "no spec written for a size that does not plan"
# a HashLips repo layout: order from src/config.js
mkdir -p "$T/repo/src"
cp -r "$T/hl/layers" "$T/repo/layers"
cat >"$T/repo/src/config.js" <<'JS'
const layerConfigurations = [
  {
    growEditionSizeTo: 5,
    layersOrder: [
      { name: "Background" },
      { name: "Shape" },
      { name: "Border" },
      { name: "Eyes" },
    ],
  },
];
JS
"$KILN" -C "$T/repo" init --from-hashlips "$T/repo/layers" >"$T/out" 2>&1
expect_eq "config.js import" $? 0
expect_contains "says where the order came from" "$T/out" "config.js"
expect_contains "relative paths" "$T/repo/kiln.yaml" 'file: "layers/Shape/'
grep -q '^paths:' "$T/repo/kiln.yaml" && fail "layers inside the project: no paths.allow" || ok
names=$(grep '^  - name: ' "$T/repo/kiln.yaml" | sed 's/  - name: //' | tr '\n' ,)
expect_eq "order from config.js" "$names" "Background,Shape,Border,Eyes,"
# refuses to overwrite
"$KILN" -C "$T/repo" init --from-hashlips "$T/repo/layers" >"$T/out" 2>&1
expect_eq "no overwrite" $? 2
# errors
"$KILN" -C "$T/x" init --from-hashlips "$T/nowhere" >"$T/out" 2>&1
expect_eq "missing folder" $? 2
expect_contains "names the folder" "$T/out" "nowhere"
"$KILN" -C "$P" init --force --from-hashlips "$T/hl/layers" --order Background,Nope >"$T/out" 2>&1
expect_eq "bad --order" $? 2
expect_contains "names the layer" "$T/out" "'Nope'"
expect_contains "the layers folder is where" "$T/out" "kiln: $T/hl/layers: "
expect_contains "--order is the command's hint" "$T/out" "hint: \`--order A,B,C\`"
# weights in file names as HashLips reads them (Number() of the text after the last '#'):
# refused, naming the file, when HashLips would misuse them; never wrapped
png=$(ls "$T"/hl/layers/Background/*.png | head -1)
weights() { # folder file...: a one-layer HashLips folder
	d=$1
	shift
	rm -rf "$d"
	mkdir -p "$d/Layer"
	for f in "$@"; do cp "$png" "$d/Layer/$f"; done
}
for bad in "neg#-5.png:weight -5 is negative" "zero#0.png:HashLips never picks a trait of weight 0" \
	"empty#.png:nothing follows '#'" "huge#18446744073709551616.png:is too large" \
	"inf#Infinity.png:is too large"; do
	f=${bad%%:*}
	weights "$T/w" "ok#3.png" "$f"
	"$KILN" -C "$T/wp" init --force --from-hashlips "$T/w" >"$T/out" 2>&1
	expect_eq "weight $f refused" $? 2
	expect_contains "weight $f: names the file" "$T/out" "$T/w/Layer/$f:"
	expect_contains "weight $f: says why" "$T/out" "${bad#*:}"
done
expect_eq "no spec written for a bad weight" "$(ls "$T/wp" 2>/dev/null)" ""
weights "$T/w" "half#2.5.png" "two#2.png" "text#big.png" "a#b#4.png"
"$KILN" -C "$T/wp" init --force --from-hashlips "$T/w" >"$T/out" 2>&1
expect_eq "fractions and text" $? 0
expect_contains "a fraction is kept" "$T/wp/kiln.yaml" "{name: half, weight: 2.5,"
expect_contains "text is weight 1" "$T/wp/kiln.yaml" "{name: text, weight: 1,"
expect_contains "the weight follows the last '#'" "$T/wp/kiln.yaml" "{name: a, weight: 4,"
# uneven weights: the import picks a size the plan can meet, and says why
mkdir -p "$T/u/Background" "$T/u/Body" "$T/u/Hat"
for f in Background/a#99 Background/b#1 Body/x#99 Body/y#1 Hat/c#1 Hat/d#1; do
	cp "$png" "$T/u/$f.png"
done
"$KILN" -C "$T/up" init --from-hashlips "$T/u" >"$T/out" 2>&1
expect_eq "uneven import" $? 0
expect_contains "uneven: a size that fits" "$T/up/kiln.yaml" "size: 2 "
expect_contains "uneven: says why" "$T/up/kiln.yaml" "# size 8: with these weights only 2 different tokens"
"$KILN" -C "$T/up" plan >"$T/out" 2>&1
expect_eq "uneven: the plan meets the size" $? 0
"$KILN" -C "$T/up2" init --from-hashlips "$T/u" --size 5 >"$T/out" 2>&1
expect_eq "uneven: an asked size that cannot fit" $? 2
expect_contains "uneven: says the most that fits" "$T/out" "at most 2 can"
# kiln init alone: a starter spec that parses (its layer files do not exist yet)
"$KILN" -C "$T/fresh" init >"$T/out" 2>&1
expect_eq "starter" $? 0
"$KILN" -C "$T/fresh" plan >"$T/out" 2>&1
expect_eq "starter plan wants its files" $? 2
expect_contains "starter names a missing file" "$T/out" "layers/Background/blue.png' not found"
# a FIFO among the layer files: refused by name at once (it would block the import's read)
rm -rf "$T/fifo" && mkdir -p "$T/fifo/layers/Body" "$T/fifo/p"
cp "$T/hl/layers/Background/"*.png "$T/fifo/layers/Body/" 2>/dev/null
mkfifo "$T/fifo/layers/Body/a#1.png"
timeout 20 "$KILN" -C "$T/fifo/p" init --from-hashlips "$T/fifo/layers" >"$T/out" 2>&1
expect_eq "FIFO layer file: exit 2, no hang" $? 2
expect_contains "FIFO layer file: named" "$T/out" "a#1.png: is a FIFO (named pipe), not a regular file"
[ ! -e "$T/fifo/p/kiln.yaml" ] && ok || fail "FIFO layer file: a kiln.yaml was written"
finish
