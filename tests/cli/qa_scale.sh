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
# a token of the layers' size is what is now wrong
"$KILN" -C "$P" qa --json >"$T/q.json" 2>/dev/null
expect_eq "kiln qa passes" $? 0
$PY -c "from PIL import Image; Image.open('$P/dist/images/1.png').resize((256, 256)).save('$P/dist/images/1.png')"
"$KILN" -C "$P" qa --json >"$T/q2.json" 2>/dev/null
expect_eq "kiln qa fails on a 256x256 token" $? 1
expect_contains "expects 512x512" "$T/q2.json" "256x256, expected 512x512"
finish
