# Change one layer file: only the items using it render again; the rest keep their images.
. "$(dirname "$0")/lib.sh"
P=$T/owls
owls "$P"
"$KILN" -C "$P" build -q || fail "first build"
"$KILN" -C "$P" ls --json >"$T/before"
# repaint the halo (a different colour, same size and alpha)
$PY - "$P/layers/Hat/halo.png" <<'PY'
import sys
from PIL import Image
im = Image.open(sys.argv[1]).convert("RGBA")
px = im.load()
for y in range(im.height):
    for x in range(im.width):
        r, g, b, a = px[x, y]
        if a:
            px[x, y] = (b, r, g, a)
im.save(sys.argv[1])
PY
"$KILN" -C "$P" build --json >"$T/build.json" 2>"$T/err"
expect_eq "rebuild exit" $? 0
halos=$($PY -c "import json,sys
print(sum(1 for l in open('$T/before') if json.loads(l)['traits'].get('Hat') == 'Halo'))")
rendered=$(grep '"stage":"render"' "$T/build.json" | grep summary | $PY -c "import json,sys
print(json.loads(sys.stdin.read())['rendered'])")
expect_eq "only halo items re-rendered" "$rendered" "$halos"
[ "$halos" -gt 0 ] && ok || fail "the example has no halos"
"$KILN" -C "$P" ls --json >"$T/after"
changed=$($PY - "$T/before" "$T/after" <<'PY'
import json, sys
a = [json.loads(l) for l in open(sys.argv[1])]
b = [json.loads(l) for l in open(sys.argv[2])]
bad = 0
for x, y in zip(a, b):
    halo = x["traits"].get("Hat") == "Halo"
    if halo == (x["image"] == y["image"]):
        bad += 1
print(bad)
PY
)
expect_eq "images changed exactly for halo items" "$changed" 0
# the release picked the new images up
expect_contains "release rewritten" "$T/build.json" '"stage":"release","written":true'
# edit the spec (one weight): the plan is redone but unchanged tokens keep ids and seeds
sed -i 's/{name: Beak-placeholder//' "$P/kiln.yaml"
printf '\n# a comment changes the file but not the plan\n' >>"$P/kiln.yaml"
"$KILN" -C "$P" build --json >"$T/b2.json" 2>&1
expect_contains "comment-only change re-plans with nothing changed" "$T/b2.json" '"changed":0'
expect_contains "and renders nothing" "$T/b2.json" '"todo":0'
# replace a rejected token: quotas stay exact, only the tokens that changed render again
"$KILN" -C "$P" plan --replace 5 --json >"$T/rep.json"
expect_eq "replace exit" $? 0
nchanged=$($PY -c "import json; r=json.load(open('$T/rep.json')); assert r['changed'][0] == 5; print(len(r['changed']))")
"$KILN" -C "$P" plan --report --json | $PY -c "import json,sys
r = json.load(sys.stdin)
print(all(v['diff'] == 0 for l in r['layers'] for v in l['values']))" >"$T/exact"
expect_eq "quotas exact after replace" "$(cat "$T/exact")" True
"$KILN" -C "$P" render --json | tail -1 >"$T/sum"
expect_contains "only the changed tokens render" "$T/sum" "\"rendered\":$nchanged,"
finish
