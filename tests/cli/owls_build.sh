# The example end to end: build, dist/ shape, metadata, incremental no-op, determinism.
. "$(dirname "$0")/lib.sh"
P=$T/owls
owls "$P"
"$KILN" -C "$P" build >"$T/out" 2>"$T/err"
expect_eq "first build exit" $? 0
expect_eq "images" "$(ls "$P/dist/images" | wc -l)" 60
expect_eq "metadata files" "$(ls "$P/dist/metadata" | wc -l)" 60
$PY - "$P" <<'PY' >"$T/py" 2>&1
import json, sys, os
d = sys.argv[1] + "/dist"
allm = json.load(open(d + "/_metadata.json"))
assert len(allm) == 60, len(allm)
ids = set()
for i in range(1, 61):
    m = json.load(open(f"{d}/metadata/{i}.json"))
    assert m == allm[i - 1], i
    assert m["image"] == "ipfs://%s/%d.png" % ([e["cid"] for e in json.load(open(d + "/ipfs.json"))["entries"] if e["name"] == "images"][0], i), m["image"]
    assert m["external_url"] == "https://example.com/owls"
    for a in m["attributes"]:
        assert set(a) == {"trait_type", "value"}, a
        assert a["value"] != "None", "none values are left out of metadata"
    if m["name"] == "The Founder":
        assert {"trait_type": "Type", "value": "Legendary"} in m["attributes"]
    else:
        assert m["name"] == f"Pixel Owl #{i}", m["name"]
    assert os.path.getsize(f"{d}/images/{i}.png") > 0
print("ok")
PY
expect_contains "metadata checks" "$T/py" ok
# ls --json: one object per item per line with the promised keys
"$KILN" -C "$P" ls --json >"$T/ls"
expect_eq "ls lines" "$(wc -l <"$T/ls")" 60
$PY - "$T/ls" <<'PY' >"$T/py" 2>&1
import json, sys
for line in open(sys.argv[1]):
    o = json.loads(line)
    for k in ("id", "traits", "seed", "status", "image", "rarity_rank", "rarity_score"):
        assert k in o, k
    assert o["status"] == "rendered"
    assert len(o["image"]) == 64
    assert isinstance(o["traits"], dict)
    assert 1 <= o["rarity_rank"] <= 60
print("ok")
PY
expect_contains "ls --json shape" "$T/py" ok
# second build: nothing to do
"$KILN" -C "$P" build >"$T/out2" 2>&1
expect_eq "second build exit" $? 0
expect_contains "second build says so" "$T/out2" "nothing to do"
"$KILN" -C "$P" render --json | tail -1 >"$T/sum"
expect_contains "render has nothing to do" "$T/sum" '"todo":0'
# determinism: force-render with one thread, then two: same images
ls_field "$P" image >"$T/img_a"
"$KILN" -C "$P" render --force --threads 1 -q
ls_field "$P" image >"$T/img_b"
"$KILN" -C "$P" render --force --threads 2 -q
ls_field "$P" image >"$T/img_c"
expect_eq "same bytes with 1 thread" "$(cmp -s "$T/img_a" "$T/img_b" && echo same)" same
expect_eq "same bytes with 2 threads" "$(cmp -s "$T/img_a" "$T/img_c" && echo same)" same
# a fresh project from the same spec plans and renders the same
owls "$T/owls2"
"$KILN" -C "$T/owls2" build -q
ls_field "$T/owls2" image >"$T/img_d"
expect_eq "same collection in another folder" "$(cmp -s "$T/img_a" "$T/img_d" && echo same)" same
# status and show
"$KILN" -C "$P" status --json >"$T/st"
expect_contains "status rendered" "$T/st" '"rendered": 60'
"$KILN" -C "$P" show 1 >"$T/show"
expect_contains "show names the item" "$T/show" "item 1"
"$KILN" -C "$P" show 999 2>"$T/err"
expect_eq "show unknown id" $? 1
finish
