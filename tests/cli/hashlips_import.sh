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
$PY - "$P/kiln.yaml" <<'PY' >"$T/py"
import sys, re
names = re.findall(r"^  - name: (.*)$", open(sys.argv[1]).read(), re.M)
print(",".join(names))
PY
expect_eq "order as given" "$(cat "$T/py")" "Background,Shape,Eyes,Border"
"$KILN" -C "$P" build -q
expect_eq "imported project builds" $? 0
expect_eq "images" "$(ls "$P/dist/images" | wc -l)" 30
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
# kiln init alone: a starter spec that parses (its layer files do not exist yet)
"$KILN" -C "$T/fresh" init >"$T/out" 2>&1
expect_eq "starter" $? 0
"$KILN" -C "$T/fresh" plan >"$T/out" 2>&1
expect_eq "starter plan wants its files" $? 2
expect_contains "starter names a missing file" "$T/out" "layers/Background/blue.png' not found"
finish
