# image.thumbnail: dist/thumbnails/ beside images/, named alike, the size and format asked,
# the same bytes every release, made again only for images that changed; verify still passes.
. "$(dirname "$0")/lib.sh"
P=$T/owls
owls "$P"
sed -i 's/^image: {width: 256, height: 256, format: png}$/image: {width: 256, height: 256, format: png, thumbnail: {size: 96, format: webp}}/' "$P/kiln.yaml"
grep -q "thumbnail: {size: 96" "$P/kiln.yaml" || fail "the example's image line changed: update this test"
"$KILN" -C "$P" build -q
expect_eq "build with thumbnails" $? 0
expect_eq "a thumbnail per image" "$(ls "$P/dist/thumbnails" | wc -l)" "$(ls "$P/dist/images" | wc -l)"
$PY - "$P/dist" <<'PY' >"$T/py" 2>&1
import os, sys
from PIL import Image
d = sys.argv[1]
for f in os.listdir(d + "/images"):
    stem = f.rsplit(".", 1)[0]
    im = Image.open(d + "/thumbnails/" + stem + ".webp")
    assert im.format == "WEBP" and max(im.size) == 96, (f, im.format, im.size)
    big = Image.open(d + "/images/" + f).convert("RGB").resize(im.size, Image.BOX)
    small = im.convert("RGB")
    diff = sum(abs(a - b) for p, q in zip(big.getdata(), small.getdata()) for a, b in zip(p, q))
    assert diff / (96 * 96 * 3) < 12, (f, diff / (96 * 96 * 3))   # it is the same picture
print("ok")
PY
expect_contains "96 px WebP of the same picture" "$T/py" ok
"$KILN" verify "$P/dist" >/dev/null
expect_eq "verify passes with thumbnails/" $? 0
sum1=$(cat "$P"/dist/thumbnails/* | sha256sum)
rm -rf "$P/.kiln/thumbs"
"$KILN" -C "$P" release --force -q
expect_eq "same thumbnail bytes when made again" "$(cat "$P"/dist/thumbnails/* | sha256sum)" "$sum1"
# one layer changes: only the thumbnails of the images that changed are made
n0=$(ls "$P/.kiln/thumbs" | wc -l)
$PY -c "
from PIL import Image
im = Image.open('$P/layers/Eyes/sleepy.png').convert('RGBA')
im.putpixel((128, 100), (255, 0, 0, 255)); im.save('$P/layers/Eyes/sleepy.png')"
"$KILN" -C "$P" build -q
changed=$(ls "$P/.kiln/thumbs" | wc -l)
[ "$changed" -gt "$n0" ] && [ "$((changed - n0))" -lt "$n0" ] && ok || fail "thumbs made again: $n0 -> $changed"
finish
