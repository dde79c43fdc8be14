# kiln qa FOLDER and kiln verify on hostile folders (issue 19): a provenance.json naming a file
# outside the folder or /dev/zero, FIFOs where an image or a metadata file is expected, a
# metadata file over 64 MiB, a greyscale PNG among RGB ones. Every run must end (timeout) with
# a report naming the file, and nothing outside the folder may be read.
. "$(dirname "$0")/lib.sh"
TO="timeout 60"
mk() { # dir [n]: a HashLips build/ folder, tokens 1..n (default 5; RGB PNGs 32x32), provenance.json
	mkdir -p "$1/images" "$1/json"
	$PY - "$1" "${2:-5}" <<'PY'
import hashlib, json, sys
from PIL import Image
d = sys.argv[1]
files = []
for i in range(1, int(sys.argv[2]) + 1):
    im = Image.new("RGB", (32, 32))
    im.putdata([((x * 7 + i * 40) % 256, (y * 13 + i * 20) % 256, (x * y + i * 60) % 256)
                for y in range(32) for x in range(32)])
    im.save("%s/images/%d.png" % (d, i))
    json.dump({"name": "T %d" % i, "description": "d", "image": "ipfs://x/%d.png" % i,
               "edition": i, "attributes": [{"trait_type": "k", "value": str(i)}]},
              open("%s/json/%d.json" % (d, i), "w"))
    files.append({"file": "images/%d.png" % i,
                  "sha256": hashlib.sha256(open("%s/images/%d.png" % (d, i), "rb").read()).hexdigest()})
all = "".join(f["sha256"] for f in files)
json.dump({"provenance_hash": hashlib.sha256(all.encode()).hexdigest(), "images": files},
          open(d + "/provenance.json", "w"))
PY
}
# the (sorted) list of check ids of the findings about file $2 in the qa JSON $1
checks_of() {
	$PY -c 'import json, sys
r = json.load(open(sys.argv[1]))
print(" ".join(sorted(set(f["check"] for f in r["findings"] if f.get("file") == sys.argv[2]))))' "$1" "$2" 2>/dev/null
}
set_prov() { # dir index file: images[index].file = file
	$PY -c 'import json, sys
p = sys.argv[1] + "/provenance.json"
j = json.load(open(p)); j["images"][int(sys.argv[2])]["file"] = sys.argv[3]
json.dump(j, open(p, "w"))' "$1" "$2" "$3"
}

# 1. provenance.json names ../../../../etc/passwd and /dev/zero: findings, nothing read
mk "$T/p"
set_prov "$T/p" 0 ../../../../../../../../etc/passwd
set_prov "$T/p" 1 /dev/zero
sha=$(sha256sum /etc/passwd | cut -c1-12)
$TO "$KILN" qa "$T/p" --json >"$T/p.json" 2>"$T/p.err"
expect_eq "qa with provenance paths out of the folder fails" $? 1
expect_eq "images[0] leaves the folder" "$(checks_of "$T/p.json" ../../../../../../../../etc/passwd)" \
	collection.provenance_path
expect_eq "images[1] (/dev/zero) leaves the folder" "$(checks_of "$T/p.json" /dev/zero)" \
	collection.provenance_path
expect_contains "the message says it leaves the folder" "$T/p.json" "leaves the folder"
if grep -q "$sha" "$T/p.json" "$T/p.err"; then fail "the SHA-256 of /etc/passwd is printed"; else ok; fi
# a link inside the folder to /dev/zero, and a FIFO listed in provenance.json
mk "$T/q"
ln -s /dev/zero "$T/q/zero.png"
mkfifo "$T/q/fifo.png"
set_prov "$T/q" 0 zero.png
set_prov "$T/q" 1 fifo.png
$TO "$KILN" qa "$T/q" --json >"$T/q.json" 2>"$T/q.err"
expect_eq "qa with a link to /dev/zero and a FIFO in provenance.json fails" $? 1
expect_eq "the link to /dev/zero leaves the folder" "$(checks_of "$T/q.json" zero.png)" \
	collection.provenance_path
expect_eq "the FIFO is refused" "$(checks_of "$T/q.json" fifo.png)" collection.provenance_path
expect_contains "the FIFO is named as one" "$T/q.json" "is a FIFO"

# kiln verify on the same folders: problems (exit 1), never a hang
$TO "$KILN" verify "$T/p" >"$T/v1.out" 2>"$T/v1.err"
expect_eq "verify: provenance paths out of the folder are problems" $? 1
expect_contains "verify names the entry" "$T/v1.out" "../../../../../../../../etc/passwd"
expect_contains "verify says it leaves the folder" "$T/v1.out" "leaves the release folder"
if grep -q "$sha" "$T/v1.out" "$T/v1.err"; then fail "verify prints the SHA-256 of /etc/passwd"; else ok; fi
$TO "$KILN" verify "$T/q" >"$T/v2.out" 2>"$T/v2.err"
expect_eq "verify: a link to /dev/zero and a FIFO are problems" $? 1
expect_contains "verify names the FIFO" "$T/v2.out" "fifo.png"
# ipfs.json naming a FIFO and a path through a link out of the folder
mk "$T/i"
mkfifo "$T/i/car.car"
ln -s /etc "$T/i/etc"
printf '{"entries":[{"name":"car","path":"car.car","sha256":"%064d"},{"name":"images","path":"etc/passwd","cid":"bafy"}]}\n' 0 >"$T/i/ipfs.json"
$TO "$KILN" verify "$T/i" >"$T/v3.out" 2>"$T/v3.err"
expect_eq "verify: ipfs.json naming a FIFO and a file out of the folder" $? 1
expect_contains "verify: ipfs.json's path out of the folder" "$T/v3.out" "etc/passwd leaves the release folder"
# records that are FIFOs
mkdir -p "$T/f"
mkfifo "$T/f/provenance.json" "$T/f/ipfs.json"
$TO "$KILN" verify "$T/f" >"$T/v4.out" 2>"$T/v4.err"
expect_eq "verify: FIFO records are problems" $? 1
expect_contains "verify: provenance.json is a FIFO" "$T/v4.out" "provenance.json: is a FIFO"
# manifest.sha256 as a FIFO, and as a link to /etc/passwd (whose lines verify would quote)
mkdir -p "$T/g"
mkfifo "$T/g/manifest.sha256"
$TO "$KILN" verify "$T/g" >"$T/v5.out" 2>"$T/v5.err"
expect_eq "verify: a FIFO manifest.sha256 is a problem" $? 1
expect_contains "verify: manifest.sha256 is a FIFO" "$T/v5.out" "manifest.sha256: cannot read"
rm "$T/g/manifest.sha256"
ln -s /etc/passwd "$T/g/manifest.sha256"
$TO "$KILN" verify "$T/g" >"$T/v6.out" 2>"$T/v6.err"
expect_eq "verify: a manifest.sha256 linked out is a problem" $? 1
expect_contains "verify: manifest.sha256 leaves the folder" "$T/v6.out" "manifest.sha256: leaves the release folder"
if grep -q "root:" "$T/v6.out" "$T/v6.err"; then fail "verify quotes /etc/passwd"; else ok; fi

# 2. FIFOs where an image and a metadata file are expected; 3. a metadata file over 64 MiB;
# 5. a greyscale PNG among RGB ones (8-bit and 1-bit)
mk "$T/h" 8
rm -f "$T/h/provenance.json" "$T/h/images/3.png" "$T/h/json/4.json"
mkfifo "$T/h/images/3.png" "$T/h/json/4.json"
truncate -s $((64 * 1048576 + 1)) "$T/h/json/5.json"
$PY - "$T/h" <<'PY'
import sys
from PIL import Image
d = sys.argv[1]
im = Image.new("L", (32, 32)); im.putdata([(x * 8 + y) % 256 for y in range(32) for x in range(32)])
im.save(d + "/images/1.png")
im = Image.new("1", (32, 32)); im.putdata([255 * ((x // 4 + y // 4) % 2) for y in range(32) for x in range(32)])
im.save(d + "/images/2.png")
PY
$TO "$KILN" qa "$T/h" --json >"$T/h.json" 2>"$T/h.err"
expect_eq "qa with FIFOs and a huge metadata file reports (exit 1)" $? 1
expect_eq "the FIFO image is that token's finding" "$(checks_of "$T/h.json" 3.png)" image.not_a_file
expect_eq "the FIFO metadata file is that token's finding" "$(checks_of "$T/h.json" 4.json)" \
	token.not_a_file
expect_eq "the huge metadata file is that token's finding" "$(checks_of "$T/h.json" 5.json)" \
	token.too_large
expect_contains "the limit is in the message" "$T/h.json" "more than 64 MiB"
expect_eq "the 8-bit grey PNG warns image.color" "$(checks_of "$T/h.json" 1.png)" image.color
expect_eq "the 1-bit grey PNG warns image.color" "$(checks_of "$T/h.json" 2.png)" image.color
expect_contains "the 1-bit grey PNG is named so" "$T/h.json" "1-bit greyscale"
$PY -c 'import json, sys
r = json.load(open(sys.argv[1]))
f = [x for x in r["findings"] if x["check"] == "token.not_a_file"]
assert f and "FIFO" in f[0]["message"], f
# the run went on: 6.json (after the FIFO and the huge file) was checked like the others
assert [x for x in r["findings"] if x["file"] == "6.json" and x["check"] == "erc721.uri"], r' "$T/h.json" >"$T/py" 2>&1
expect_eq "token.not_a_file says FIFO; the other tokens are checked" "$(cat "$T/py")" ""
# the HTML report makes thumbnails of failing tokens: not of the FIFO
$TO "$KILN" qa "$T/h" --html "$T/html" >"$T/html.out" 2>&1
expect_eq "qa --html with a FIFO image reports (exit 1)" $? 1
expect_contains "the HTML report names the FIFO" "$T/html/index.html" "image.not_a_file"

# 6. a malformed record after problems were found: exit 1, the problems freed (in the ASan
# build LeakSanitizer reported them on stderr; the exit status stays 1 either way)
mkdir -p "$T/m/images" "$T/n/images"
printf x >"$T/m/images/1.png"
printf x >"$T/n/images/1.png"
printf '{"entries":[{"name":"images"}]}\n' >"$T/m/ipfs.json"
printf '{"provenance_hash":"%064d","images":[{"file":"images/1.png"}]}\n' 0 >"$T/n/provenance.json"
for d in m n; do
	$TO "$KILN" verify "$T/$d" >"$T/$d.out" 2>"$T/$d.err"
	expect_eq "verify on a malformed record ($d)" $? 1
	if grep -q "Sanitizer" "$T/$d.err"; then fail "verify ($d) leaks: $(head -c 600 "$T/$d.err")"; else ok; fi
done
expect_contains "the malformed ipfs.json is named" "$T/m.err" "ipfs.json: entries[0] has no usable"
finish
