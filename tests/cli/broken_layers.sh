# Broken layer files are found before anything renders, each named once, all at once, exit 2
# (issue 18 item 8: one wrong-size file used to fail each of its 13 items, one line each).
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
	expect_eq "$kind: build refuses the spec" $? 2
	expect_eq "$kind: names the file once" "$(grep -c 'broken.png' "$T/err")" 1
	failed=$("$KILN" -C "$T/b" ls --json --status failed | wc -l)
	expect_eq "$kind: no item rendered and failed" "$failed" 0
	"$KILN" -C "$T/b" release >"$T/rel" 2>&1
	rc=$?  # 2 when plan refused the file (the plan is older than the spec), 1 when render did
	[ $rc -ne 0 ] && ok || fail "$kind: release did not refuse"
	expect_eq "$kind: dist untouched" "$(ls "$T/b/dist/images" | wc -l)" 30
	# the file fixed: the build goes on
	cp "$T/hl/layers/Eyes/Laser#3.png" "$T/b/broken.png"
	"$KILN" -C "$T/b" build --no-qa -q >"$T/out" 2>&1
	expect_eq "$kind: fixed, builds" $? 0
done
# what a header shows (size, not an image) is found by kiln plan already, every file at once
rm -rf "$T/b"
cp -r "$P" "$T/b"
cp "$T/hl/broken/wrong-size-32x32.png" "$T/b/small.png"
cp "$T/hl/broken/corrupt.png" "$T/b/corrupt.png"
cp "$T/hl/broken/truncated.png" "$T/b/truncated.png"
sed -i 's|file: "[^"]*Laser#3.png"|file: small.png|; s|file: "[^"]*Ring#5.png"|file: corrupt.png|; s|file: "[^"]*Dots#40.png"|file: truncated.png|' "$T/b/kiln.yaml"
"$KILN" -C "$T/b" plan >"$T/out" 2>"$T/err"
expect_eq "plan: bad headers refused" $? 2
expect_contains "plan: counts them" "$T/err" "2 layer files cannot be used"
expect_contains "plan: the size" "$T/err" "small.png: is 32x32, the collection's images are 64x64"
expect_eq "plan: corrupt named once" "$(grep -c 'corrupt.png' "$T/err")" 1
# a truncated file has a sound header: the render stage decodes each file once and names all
cp "$T/hl/layers/Eyes/Laser#3.png" "$T/b/small.png"
cp "$T/hl/layers/Shape/Ring#5.png" "$T/b/corrupt.png"
cp "$T/hl/broken/truncated.png" "$T/b/small.png"
"$KILN" -C "$T/b" build >"$T/out" 2>"$T/err"
expect_eq "render: truncated files refused" $? 2
expect_contains "render: counts them" "$T/err" "2 layer files cannot be used"
expect_eq "render: each named once" "$(grep -c 'truncated.png\|small.png' "$T/err")" 2
# missing files: every one named at once when the spec is read
sed -i 's|file: small.png|file: gone1.png|; s|file: truncated.png|file: gone2.png|' "$T/b/kiln.yaml"
"$KILN" -C "$T/b" plan >"$T/out" 2>"$T/err"
expect_eq "missing files: exit 2" $? 2
expect_contains "missing files: counts them" "$T/err" "2 trait files cannot be used"
expect_contains "missing files: first" "$T/err" "'gone1.png' not found"
expect_contains "missing files: second" "$T/err" "'gone2.png' not found"
finish
