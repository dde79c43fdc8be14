# kiln qa's numeric options are range-checked before they are narrowed (4294967300 is not 4),
# and an image whose header declares too many pixels is a finding (image.too_large), not a
# 10 GB decode: a PNG of a few KB whose IHDR says 50000x50000.
. "$(dirname "$0")/lib.sh"
# a Sugar folder: two ordinary tokens and one huge-declared image
mkdir -p "$T/a"
$PY - "$T/a" <<'PY'
import json, struct, sys, zlib
d = sys.argv[1]
def chunk(t, b):
    return struct.pack(">I", len(b)) + t + b + struct.pack(">I", zlib.crc32(t + b) & 0xffffffff)
def png(path, w, h, rows):
    raw = zlib.compress(rows, 9)
    open(path, "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                           + chunk(b"IDAT", raw) + chunk(b"IEND", b""))
def pattern(w, h, k):
    return b"".join(b"\x00" + bytes(((x * 7 + y * 13 + k * 50) % 256) for x in range(w) for _ in range(3)) for y in range(h))
png(d + "/0.png", 32, 32, pattern(32, 32, 0))
png(d + "/1.png", 32, 32, pattern(32, 32, 3))
# 50000 x 50000 declared; a few KB of (truncated) data: only the header may be read
png(d + "/2.png", 50000, 50000, (b"\x00" + b"\x00" * 150000) * 4)
for i in range(3):
    json.dump({"name": "T %d" % i, "symbol": "T", "description": "d", "image": "%d.png" % i,
               "seller_fee_basis_points": 0,
               "attributes": [{"trait_type": "k", "value": str(i)}],
               "properties": {"category": "image", "files": [{"uri": "%d.png" % i, "type": "image/png"}]}},
              open("%s/%d.json" % (d, i), "w"))
PY
size=$(wc -c <"$T/a/2.png")
[ "$size" -lt 65536 ] || fail "the huge PNG is small ($size bytes)"
"$KILN" qa "$T/a" --json >"$T/r.json" 2>"$T/err"
expect_eq "a 50000x50000 PNG fails qa" $? 1
$PY - "$T/r.json" <<'PY' >"$T/py" 2>&1
import json, sys
r = json.load(open(sys.argv[1]))
big = [f for f in r["findings"] if f["check"] == "image.too_large"]
assert len(big) == 1 and big[0]["file"] == "2.png" and big[0]["severity"] == "error", r
assert "50000x50000" in big[0]["message"] and "64.0 Mpx" in big[0]["message"], big
assert not [f for f in r["findings"] if f["check"] in ("image.decode", "image.black") and f["file"] == "2.png"], r
print("ok")
PY
expect_contains "image.too_large for 2.png, nothing decoded" "$T/py" ok
# the limit is configurable: --max-pixels, and qa.max_pixels of a --config kiln.yaml
"$KILN" qa "$T/a" --max-pixels 512 --json >"$T/r.json" 2>&1
expect_contains "--max-pixels 512 refuses 32x32" "$T/r.json" '"file":"0.png"'
expect_contains "--max-pixels 512 names the limit" "$T/r.json" 'over the limit of 0.0 Mpx'
cp "$T/a/0.png" "$T/a.png"
printf 'collection: {name: X, size: 1}\nimage: {width: 32, height: 32}\nlayers: [{name: A, traits: [{name: a, file: a.png}]}]\nqa: {max_pixels: 100}\n' >"$T/k.yaml"
"$KILN" qa "$T/a" --config "$T/k.yaml" --json >"$T/r.json" 2>"$T/err"
n=$($PY -c "import json,sys; print(sum(f['check']=='image.too_large' for f in json.load(open(sys.argv[1]))['findings']))" "$T/r.json" 2>&1)
expect_eq "qa.max_pixels: 100 refuses every image ($(cat "$T/err"))" "$n" 3
# numeric options: out of range is a usage error naming the option and the range
for opt in "--near 4294967300" "--near 33" "--near -1" "--near-dhash 4294967297" \
	   "--width 4294967297" "--height 0" "--max-size 99999999999999999999" "--max-size -5" \
	   "--max-pixels 0" "--max-pixels 1099511627777" "--near 4x"; do
	# shellcheck disable=SC2086
	"$KILN" qa "$T/a" $opt >"$T/o" 2>&1
	expect_eq "$opt is a usage error" $? 2
	name=${opt%% *}
	expect_contains "$opt names $name" "$T/o" "$name takes"
	expect_contains "$opt names the range" "$T/o" ".."
done
"$KILN" qa "$T/a" --near 32 --near-dhash 0 --max-size 1 -q >"$T/o" 2>&1
expect_eq "in-range values are accepted (qa runs, fails on size)" $? 1
finish
