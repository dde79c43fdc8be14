# The Provenance Portfolio end to end, checked as an outsider would: `kiln build` with
# portfolio: {enabled: true} writes dist/portfolio/; the log's chain, RFC 6962 root, proofs and
# the SPDX document are recomputed in Python (tests/portfolio/check_portfolio.py), the checkpoint
# verified by openssl pkeyutl, every bundle by @sigstore/verify with the studio key
# (tests/portfolio/verify_bundles.js); nothing secret is under dist/; the log only grows;
# `kiln verify --key` checks against the key the studio published, and names both fingerprints
# when dist/ carries another.
. "$(dirname "$0")/lib.sh"
export KILN_KEYS_DIR=$T/keys
P=$T/owls
owls "$P"
printf 'portfolio: {enabled: true, prompts: hashed}\n' >>"$P/kiln.yaml"
"$KILN" -C "$P" build -q >"$T/out" 2>&1
expect_eq "build without keys fails" $? 1
expect_contains "and says to make them" "$T/out" "kiln keys init"
"$KILN" keys init --studio example.com/owls >/dev/null
# a LoRA and the dataset it was trained on
$PY - "$T" <<'PY'
import json, struct, sys
h = json.dumps({"__metadata__": {"ss_network_dim": "8", "ss_dataset_dirs": "{\"10_owlset\": {\"n_repeats\": 10}}"},
                "lora_up.weight": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4]}}).encode()
open(sys.argv[1] + "/owl.safetensors", "wb").write(struct.pack("<Q", len(h)) + h + b"abcd")
PY
mkdir -p "$T/owlset"
cp "$(find "$P/layers" -name '*.png' | head -1)" "$T/owlset/a.png"
"$KILN" -C "$P" datasets add "$T/owlset" --license CC-BY-4.0 --source https://example.com/owlset \
	>/dev/null 2>"$T/err"
expect_eq "datasets add" $? 0
"$KILN" -C "$P" models add "$T/owl.safetensors" --license openrail >/dev/null 2>"$T/err"
expect_eq "models add" $? 0
"$KILN" -C "$P" build -q >"$T/out" 2>&1
expect_eq "build with the portfolio" $? 0
D=$P/dist
for f in portfolio.json index.html log/entries.jsonl log/checkpoint sbom.spdx.json \
	keys/signing-ed25519.pub models/owl.json datasets/owlset.json log/proofs/1.json \
	attestations/1.sigstore.json; do
	[ -s "$D/portfolio/$f" ] && ok || fail "dist/portfolio/$f missing"
done
if grep -rl "PRIVATE KEY" "$D" >"$T/leak"; then fail "a private key under dist/: $(cat "$T/leak")"; else ok; fi
grep -q '"portfolio"' "$D/ipfs.json"
expect_eq "the portfolio folder has a CID in ipfs.json" $? 0
grep -q '  portfolio/log/checkpoint$' "$D/manifest.sha256"
expect_eq "the portfolio is in the manifest" $? 0
"$KILN" -C "$P" verify >"$T/v" 2>&1
expect_eq "kiln verify passes" $? 0
WANT_TRAINED_ON=1 $PY "$KILN_SRC/tests/portfolio/check_portfolio.py" "$D" >"$T/py" 2>&1
expect_eq "chain, root, proofs, SPDX ($(tail -3 "$T/py"))" $? 0
# the checkpoint with openssl alone: body = the first three lines, signature after the key id
$PY - "$D/portfolio/log/checkpoint" "$T" <<'PY'
import base64, sys
note = open(sys.argv[1], "rb").read()
body, sig = note.split(b"\n\n", 1)
open(sys.argv[2] + "/body", "wb").write(body + b"\n")
open(sys.argv[2] + "/sig", "wb").write(base64.b64decode(sig.split(b" ")[2])[4:])
PY
openssl pkeyutl -verify -rawin -pubin -inkey "$D/portfolio/keys/signing-ed25519.pub" \
	-in "$T/body" -sigfile "$T/sig" >"$T/o" 2>&1
expect_eq "openssl verifies the checkpoint" $? 0
node "$KILN_SRC/tests/portfolio/verify_bundles.js" "$D" >"$T/node" 2>&1
expect_eq "@sigstore/verify accepts every bundle ($(cat "$T/node"))" $? 0
# each attestation names the artist files (layer PNGs) it was composited from, by SHA-256
$PY - "$D" "$P" <<'PY' >"$T/py" 2>&1
import base64, hashlib, json, os, sys
d, p = sys.argv[1], sys.argv[2]
n = 0
for f in os.listdir(d + "/portfolio/attestations"):
    b = json.load(open(d + "/portfolio/attestations/" + f))
    st = json.loads(base64.b64decode(b["dsseEnvelope"]["payload"]))
    deps = st["predicate"]["buildDefinition"]["resolvedDependencies"]
    assert deps, f
    for x in deps:
        assert hashlib.sha256(open(os.path.join(p, x["uri"]), "rb").read()).hexdigest() == x["digest"]["sha256"], x
        n += 1
print(n)
PY
expect_eq "resolvedDependencies: the layer files with their SHA-256 ($(cat "$T/py"))" $? 0
grep -q "trainedOn" "$D/portfolio/sbom.spdx.json"
expect_eq "the LoRA is trainedOn the dataset" $? 0
grep -q '"kind":"model.registered"' "$D/portfolio/log/entries.jsonl" &&
	grep -q '"kind":"dataset.added"' "$D/portfolio/log/entries.jsonl" &&
	grep -q '"kind":"qa.gate"' "$D/portfolio/log/entries.jsonl" &&
	grep -q '"kind":"release"' "$D/portfolio/log/entries.jsonl"
expect_eq "the log has the registry, QA and release facts" $? 0
grep -q '<script' "$D/portfolio/index.html"
expect_eq "index.html needs no JavaScript" $? 1
cp "$D/portfolio/log/entries.jsonl" "$T/log1"
# nothing changed: the same bytes; a new model: the log grows, its old lines unchanged
"$KILN" -C "$P" release >"$T/o" 2>&1
cmp -s "$T/log1" "$D/portfolio/log/entries.jsonl"
expect_eq "a release with nothing new keeps the log" $? 0
cp "$T/owl.safetensors" "$T/owl2.safetensors"
printf 'x' >>"$T/owl2.safetensors"
"$KILN" -C "$P" models add "$T/owl2.safetensors" >/dev/null 2>&1
expect_eq "a second LoRA file (other bytes) registers" $? 0
"$KILN" -C "$P" release >"$T/o" 2>&1
expect_eq "release after a new model" $? 0
n1=$(wc -l <"$T/log1")
head -n "$n1" "$D/portfolio/log/entries.jsonl" | cmp -s - "$T/log1"
expect_eq "the log only grew" $? 0
[ "$(wc -l <"$D/portfolio/log/entries.jsonl")" -gt "$n1" ] && ok || fail "no new entry"
# verify against the key the studio published elsewhere
fp=$(openssl pkey -pubin -in "$KILN_KEYS_DIR/signing-ed25519.pub" -outform DER | tail -c 32 |
	sha256sum | cut -c1-64)
"$KILN" verify "$D" --key "$KILN_KEYS_DIR/signing-ed25519.pub" >"$T/v" 2>&1
expect_eq "verify --key (the studio's own) $(tail -2 "$T/v")" $? 0
expect_contains "says which key checked it" "$T/v" "studio key $fp ($KILN_KEYS_DIR/signing-ed25519.pub)"
"$KILN" verify "$D" >"$T/v" 2>&1
expect_contains "without --key: the folder's key, said so" "$T/v" "studio key $fp (the one in portfolio/keys/"
KILN_KEYS_DIR=$T/other "$KILN" keys init --studio example.com/owls >/dev/null
ofp=$(openssl pkey -pubin -in "$T/other/signing-ed25519.pub" -outform DER | tail -c 32 |
	sha256sum | cut -c1-64)
"$KILN" verify "$D" --studio-key "$T/other/signing-ed25519.pub" >"$T/v" 2>&1
expect_eq "verify --studio-key (another studio's key) fails" $? 1
expect_contains "naming both fingerprints" "$T/v" "key $fp is not the studio key $ofp given"
grep -q "checkpoint" "$T/v" && ok || fail "the checkpoint does not check with the other key"
"$KILN" verify "$D" --key "$T/owl.safetensors" >"$T/v" 2>&1
expect_eq "verify --key FILE that is not a key: usage (2) $(cat "$T/v")" $? 2
finish
