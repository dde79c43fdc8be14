# kiln models add / ls and kiln datasets add / ls: A1111's hashes recomputed here with Python,
# the metadata kept verbatim, hostile files refused (exit 1, nothing registered), a dataset's
# files, pHashes and RFC 6962 Merkle root.
. "$(dirname "$0")/lib.sh"
P=$T/owls
owls "$P"
"$KILN" -C "$P" plan -q >/dev/null 2>&1
expect_eq "plan" $? 0
$PY - "$T" <<'PY'
import json, struct, sys
d = sys.argv[1]
def st(path, header, data, claim=None):
    h = json.dumps(header).encode()
    open(path, "wb").write(struct.pack("<Q", len(h) if claim is None else claim) + h + data)
data = bytes(i * 13 % 251 for i in range(0x130000))
st(d + "/owl_style.safetensors", {"__metadata__": {"ss_network_dim": "16", "ss_network_alpha": "8",
   "ss_dataset_dirs": "{\"owls\": {\"n_repeats\": 10, \"img_count\": 3}}", "modelspec.title": "Owl style"},
   "lora_unet_down.lora_down.weight": {"dtype": "U8", "shape": [len(data)], "data_offsets": [0, len(data)]}}, data)
st(d + "/bad.safetensors", {"w": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}}, b"x", claim=10**6)
st(d + "/badmeta.safetensors", {"__metadata__": {"ss_network_dim": 16}}, b"")
PY
"$KILN" -C "$P" models add "$T/owl_style.safetensors" --license CC-BY-4.0 --trained-on owls \
	--json >"$T/m.json" 2>"$T/err"
expect_eq "models add" $? 0
$PY - "$T/m.json" "$T/owl_style.safetensors" <<'PY' >"$T/py" 2>&1
import hashlib, json, struct, sys
r = json.load(open(sys.argv[1]))
b = open(sys.argv[2], "rb").read()
n = struct.unpack("<Q", b[:8])[0]
full = hashlib.sha256(b).hexdigest()
assert r["sha256"] == full and r["a1111"]["model_hash"] == full[:10], r
assert r["a1111"]["legacy_hash"] == hashlib.sha256(b[0x100000:0x110000]).hexdigest()[:8]
assert r["a1111"]["addnet_hash"] == hashlib.sha256(b[8 + n:]).hexdigest()
assert r["a1111"]["lora_hash"] == r["a1111"]["addnet_hash"][:12]
assert r["kind"] == "lora" and r["license"] == "CC-BY-4.0" and r["trained_on"] == ["owls"]
assert r["safetensors"]["metadata"]["modelspec.title"] == "Owl style"
assert r["safetensors"]["header_bytes"] == n
PY
expect_eq "hashes as A1111 makes them ($(cat "$T/py"))" $? 0
"$KILN" -C "$P" models add "$T/owl_style.safetensors" >"$T/o" 2>&1
expect_contains "the same file twice is a no-op" "$T/o" "already registered"
for f in bad badmeta; do
	"$KILN" -C "$P" models add "$T/$f.safetensors" >"$T/o" 2>&1
	expect_eq "hostile $f refused" $? 1
	expect_contains "$f: named" "$T/o" "$f.safetensors"
done
"$KILN" -C "$P" models ls --json >"$T/ls"
expect_eq "models ls lists one model" "$(wc -l <"$T/ls")" 1
# a dataset: three images and a caption
mkdir -p "$T/ds/sub" "$T/ds/.git"
cp "$P"/layers/Body/*.png "$T/ds/" 2>/dev/null || cp "$(find "$P/layers" -name '*.png' | head -1)" "$T/ds/a.png"
echo "an owl" >"$T/ds/sub/a.caption"
echo "ignored" >"$T/ds/.git/x"
"$KILN" -C "$P" datasets add "$T/ds" --name owls >"$T/o" 2>&1
expect_eq "datasets add without licence is bad usage" $? 2
"$KILN" -C "$P" datasets add "$T/ds" --name owls --license proprietary \
	--source https://studio.example/owls --json >"$T/d.json" 2>"$T/err"
expect_eq "datasets add" $? 0
"$KILN" -C "$P" datasets ls --json >/dev/null
$PY - "$T/d.json" "$T/ds" "$P/.kiln/catalog.db" <<'PY' >"$T/py" 2>&1
import hashlib, json, os, sqlite3, sys
r = json.load(open(sys.argv[1]))
d = sys.argv[2]
files = sorted(os.path.relpath(os.path.join(a, f), d) for a, ds, fs in os.walk(d)
               for f in fs if not any(p.startswith(".") for p in os.path.relpath(os.path.join(a, f), d).split("/")))
def H(b): return hashlib.sha256(b).digest()
leaves = [H(b"\0" + ("%s  %s" % (hashlib.sha256(open(os.path.join(d, f), "rb").read()).hexdigest(), f)).encode()) for f in files]
def mth(l):
    if len(l) == 1: return l[0]
    k = 1
    while k * 2 < len(l): k *= 2
    return H(b"\1" + mth(l[:k]) + mth(l[k:]))
assert r["files"] == len(files), (r["files"], files)
assert r["merkle_root"] == mth(leaves).hex()
assert r["license"] == "proprietary" and r["name"] == "owls"
rec = json.loads(sqlite3.connect(sys.argv[3]).execute("select record from datasets").fetchone()[0])
imgs = [e for e in rec["entries"] if e["path"].endswith(".png")]
assert imgs and all(len(e["phash"]) == 16 for e in imgs), imgs
assert all("phash" not in e for e in rec["entries"] if e["path"].endswith(".caption"))
PY
expect_eq "dataset record: files, Merkle root, pHashes ($(cat "$T/py"))" $? 0
ln -s /etc/hostname "$T/ds/link"
"$KILN" -C "$P" datasets add "$T/ds" --name x --license l --source s >"$T/o" 2>&1
expect_eq "a symbolic link in a dataset is refused" $? 1
finish
