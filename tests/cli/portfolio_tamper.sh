# kiln verify catches every way the issue tampers with a portfolio, by file and entry, even
# when the forger also rewrites manifest.sha256 (so the portfolio's own checks must find it):
# one log line, one image byte, one bundle byte, a re-ordered log, a forged checkpoint, a
# removed entry; the outside tools (openssl, @sigstore/verify) fail where they apply.
. "$(dirname "$0")/lib.sh"
export KILN_KEYS_DIR=$T/keys
"$KILN" keys init --studio example.com/owls >/dev/null
P=$T/owls
owls "$P"
printf 'portfolio: {enabled: true}\n' >>"$P/kiln.yaml"
"$KILN" -C "$P" build -q >"$T/out" 2>&1
expect_eq "build" $? 0
"$KILN" verify "$P/dist" >"$T/v" 2>&1
expect_eq "the untouched release verifies" $? 0
# a copy of dist/ with one change made by $1 (python, on the folder), manifest rewritten
tamper() { # name python-code
	rm -rf "$T/d"
	cp -r "$P/dist" "$T/d"
	$PY - "$T/d" <<PY
import base64, json, os, sys
d = sys.argv[1]
pf = d + "/portfolio"
$2
PY
	(cd "$T/d" && find . -type f ! -name manifest.sha256 | sed 's|^\./||' | LC_ALL=C sort |
		xargs sha256sum >manifest.sha256)
	"$KILN" verify "$T/d" >"$T/v.$1" 2>&1
	expect_eq "$1: kiln verify fails" $? 1
}
L=portfolio/log/entries.jsonl
tamper line '
p = pf + "/log/entries.jsonl"
b = open(p, "rb").read().split(b"\n")
b[2] = b[2].replace(b"\"engine\":\"compose\"", b"\"engine\":\"compost\"")
open(p, "wb").write(b"\n".join(b))'
expect_contains "line: names the file and entry" "$T/v.line" "$L: entry 3: prev is"
expect_contains "line: the checkpoint no longer matches" "$T/v.line" "signed root is not"
tamper image '
p = d + "/images/5.png"
b = bytearray(open(p, "rb").read()); b[-20] ^= 1
open(p, "wb").write(bytes(b))'
expect_contains "image: the attestation's subject" "$T/v.image" "attestations/5.sigstore.json: subject images/5.png"
expect_contains "image: the history" "$T/v.image" "token 5's history ends in image"
tamper bundle '
p = pf + "/attestations/7.sigstore.json"
j = json.load(open(p))
s = bytearray(base64.b64decode(j["dsseEnvelope"]["signatures"][0]["sig"])); s[10] ^= 1
j["dsseEnvelope"]["signatures"][0]["sig"] = base64.b64encode(bytes(s)).decode()
json.dump(j, open(p, "w"))'
expect_contains "bundle: named, signature" "$T/v.bundle" "attestations/7.sigstore.json: the DSSE signature does not verify"
node "$KILN_SRC/tests/portfolio/verify_bundles.js" "$T/d" >"$T/node" 2>&1
expect_eq "bundle: @sigstore/verify fails too" $? 1
tamper reorder '
p = pf + "/log/entries.jsonl"
b = open(p, "rb").read().split(b"\n")
b[4], b[5] = b[5], b[4]
open(p, "wb").write(b"\n".join(b))'
expect_contains "reorder: seq" "$T/v.reorder" "$L: entry 4: seq is 5"
expect_contains "reorder: chain" "$T/v.reorder" "$L: entry 4: prev is"
tamper removed '
p = pf + "/log/entries.jsonl"
b = open(p, "rb").read().split(b"\n")
del b[6]
open(p, "wb").write(b"\n".join(b))'
expect_contains "removed: the chain breaks there" "$T/v.removed" "$L: entry 6: prev is"
# a forged checkpoint: another key signs a bigger size, under the studio's name
tamper checkpoint '
import subprocess
p = pf + "/log/checkpoint"
note = open(p).read()
body, sig = note.split("\n\n", 1)
o, n, r = body.split("\n")
body2 = "%s\n%d\n%s\n" % (o, int(n) + 1, r)
open(d + "/../fb", "w").write(body2)
subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", d + "/../fk"], check=True)
subprocess.run(["openssl", "pkeyutl", "-sign", "-rawin", "-inkey", d + "/../fk", "-in", d + "/../fb",
                "-out", d + "/../fs"], check=True)
kid = base64.b64decode(sig.split(" ")[2])[:4]
s = base64.b64encode(kid + open(d + "/../fs", "rb").read()).decode()
open(p, "w").write(body2 + "\n\u2014 example.com/owls " + s + "\n")'
expect_contains "checkpoint: the signature" "$T/v.checkpoint" "portfolio/log/checkpoint: the signature of example.com/owls does not verify"
$PY - "$T/d/portfolio/log/checkpoint" "$T" <<'PY'
import base64, sys
note = open(sys.argv[1], "rb").read()
body, sig = note.split(b"\n\n", 1)
open(sys.argv[2] + "/body", "wb").write(body + b"\n")
open(sys.argv[2] + "/sig", "wb").write(base64.b64decode(sig.split(b" ")[2])[4:])
PY
openssl pkeyutl -verify -rawin -pubin -inkey "$T/d/portfolio/keys/signing-ed25519.pub" \
	-in "$T/body" -sigfile "$T/sig" >/dev/null 2>&1
expect_eq "checkpoint: openssl rejects the forgery" $? 1
tamper proof '
p = pf + "/log/proofs/3.json"
j = json.load(open(p))
j["hashes"][0] = j["hashes"][0][:-1] + ("0" if j["hashes"][0][-1] != "0" else "1")
json.dump(j, open(p, "w"))'
expect_contains "proof: named" "$T/v.proof" "portfolio/log/proofs/3.json: entry"
finish
