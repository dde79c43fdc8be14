# image.scale: N writes width*N x height*N images (render/compose.c), so QA expects that size:
# with scale 2, every token failed image.dimensions and release was blocked (issue 19).
. "$(dirname "$0")/lib.sh"
P=$T/owls
owls "$P"
sed -i 's/^image: {width: 256, height: 256, format: png}/image: {width: 256, height: 256, format: png, scale: 2}/' "$P/kiln.yaml"
grep -q "scale: 2" "$P/kiln.yaml" || fail "kiln.yaml has scale: 2"
"$KILN" -C "$P" build >"$T/out" 2>"$T/err"
expect_eq "build with image.scale 2 passes QA and releases" $? 0
if grep -q "image.dimensions" "$T/out" "$T/err"; then fail "image.dimensions: $(head -c 600 "$T/err")"; else ok; fi
expect_eq "dist/images/1.png is 512 wide" "$($PY -c "from PIL import Image; print(Image.open('$P/dist/images/1.png').size)")" "(512, 512)"
"$KILN" -C "$P" qa >"$T/q.out" 2>&1
expect_eq "kiln qa on the project passes" $? 0
# the expectation follows the spec: with scale 3, the 512x512 images are the wrong size
sed -i 's/scale: 2}/scale: 3}/' "$P/kiln.yaml"
"$KILN" -C "$P" qa --json >"$T/q2.json" 2>"$T/q2.err"
expect_eq "kiln qa fails when the spec says scale 3" $? 1
expect_contains "expects 768x768" "$T/q2.json" "512x512, expected 768x768"
finish
