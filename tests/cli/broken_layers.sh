# Broken layer files are reported per file; the other items still render; kiln show says why.
. "$(dirname "$0")/lib.sh"
$PY "$KILN_SRC/tests/fixtures/make_hashlips.py" "$T/hl" --broken >/dev/null || fail "fixture"
P=$T/proj
mkdir -p "$P"
"$KILN" -C "$P" init --from-hashlips "$T/hl/layers" --size 30 >"$T/init" 2>&1
expect_eq "import exit" $? 0
"$KILN" -C "$P" build --no-qa -q  # the fixture's layers make look-alike tokens: QA would stop it
expect_eq "clean build" $? 0
for kind in truncated corrupt wrong-size-32x32 rgb-no-alpha; do
	rm -rf "$T/b"
	cp -r "$P" "$T/b"
	# point the Laser trait at the broken file
	cp "$T/hl/broken/$kind.png" "$T/b/broken.png"
	sed -i 's|file: "[^"]*Laser#3.png"|file: broken.png|' "$T/b/kiln.yaml"
	expect_contains "$kind: spec edited" "$T/b/kiln.yaml" "file: broken.png"
	"$KILN" -C "$T/b" build >"$T/out" 2>"$T/err"
	expect_eq "$kind: build fails" $? 1
	expect_contains "$kind: names the file" "$T/err" "broken.png"
	lasers=$("$KILN" -C "$T/b" ls --json | grep -c '"Eyes":"Laser"')
	failed=$("$KILN" -C "$T/b" ls --json --status failed | wc -l)
	expect_eq "$kind: exactly the Laser items failed" "$failed" "$lasers"
	rendered=$("$KILN" -C "$T/b" ls --json --status rendered | wc -l)
	expect_eq "$kind: the others rendered" "$((rendered + failed))" 30
	id=$("$KILN" -C "$T/b" ls --json --status failed | head -1 | $PY -c "import json,sys; print(json.loads(sys.stdin.readline())['id'])")
	"$KILN" -C "$T/b" show "$id" >"$T/show"
	expect_contains "$kind: show says why" "$T/show" "broken.png"
	"$KILN" -C "$T/b" release >"$T/rel" 2>&1
	expect_eq "$kind: release refuses" $? 1
	expect_eq "$kind: dist untouched" "$(ls "$T/b/dist/images" | wc -l)" 30
done
finish
