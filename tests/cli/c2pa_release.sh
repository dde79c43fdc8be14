# kiln release signs every PNG of a release with the portfolio for C2PA (issue 15), as the
# user types it: the c2pa-rs engine (npm @contentauth/c2pa-wasm, tests/portfolio-c2pa/) finds
# each image Trusted with the published root, with the history the log tells (compose:
# compositeSynthetic) and dev.kiln.provenance naming the token's log entry; the hashes,
# provenance hash and CIDs are of the signed bytes (kiln verify passes); a forced release gives
# the same bytes (the signing cache); a changed IDAT byte is caught by kiln verify and c2pa-rs.
. "$(dirname "$0")/lib.sh"
ORACLE=$KILN_SRC/tests/portfolio-c2pa/oracle.mjs
export KILN_KEYS_DIR=$T/keys
"$KILN" keys init --studio example.com/owls >/dev/null
P=$T/owls
owls "$P"
printf 'portfolio: {enabled: true}\n' >>"$P/kiln.yaml"
"$KILN" -C "$P" build -q >"$T/out" 2>&1
expect_eq "build" $? 0
ROOT=$P/dist/portfolio/keys/c2pa-root.pem
cmp -s "$ROOT" "$KILN_KEYS_DIR/c2pa-root.pem"
expect_eq "the published root is the studio's" $? 0
n=$(ls "$P/dist/images/" | wc -l)
signed=$(grep -lc caBX "$P"/dist/images/*.png | wc -l)
expect_eq "every released image has a manifest" "$signed" "$n"

node "$ORACLE" "$ROOT" "$P"/dist/images/1.png "$P"/dist/images/5.png "$P"/dist/images/12.png \
	>"$T/oracle" 2>&1
expect_eq "the oracle ran" $? 0
expect_eq "c2pa-rs: all Trusted" "$(grep -c '"state":"Trusted"' "$T/oracle")" 3
expect_contains "compose is compositeSynthetic" "$T/oracle" \
	'"actions":["c2pa.created http://cv.iptc.org/newscodes/digitalsourcetype/compositeSynthetic"]'
# dev.kiln.provenance points at the entry portfolio.json gives the token, and its root is the
# RFC 6962 root of the published log up to that entry
$PY - "$P/dist" "$T/oracle" >"$T/prov" 2>&1 <<'PY'
import hashlib, json, sys
d, oracle = sys.argv[1], sys.argv[2]
pj = json.load(open(d + "/portfolio/portfolio.json"))
lines = open(d + "/portfolio/log/entries.jsonl", "rb").read().split(b"\n")
tokens = {t["token_id"]: t for t in pj["tokens"]}
def mth(leaves):
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return hashlib.sha256(b"\x01" + mth(leaves[:k]) + mth(leaves[k:])).digest()
for l in open(oracle):
    f, j = l.rstrip("\n").split("\t")
    if "/images/" not in f:
        continue
    p = json.loads(j)["provenance"]
    t = tokens[p["token_id"]]
    assert p["log_index"] == t["log_index"], (p, t)
    assert p["log_entry_sha256"] == hashlib.sha256(lines[p["log_index"]]).hexdigest()
    assert p["log_size"] == p["log_index"] + 1
    leaves = [hashlib.sha256(b"\x00" + l).digest() for l in lines[:p["log_size"]]]
    assert p["log_root"] == mth(leaves).hex(), "root"
    print("ok", p["token_id"])
PY
expect_eq "dev.kiln.provenance names the token's log entry" "$(grep -c '^ok' "$T/prov")" 3

"$KILN" verify "$P/dist" >"$T/v" 2>&1
expect_eq "kiln verify passes the signed release" $? 0
before=$(sha256sum "$P"/dist/images/*.png "$P/dist/provenance.json" "$P/dist/ipfs.json")
"$KILN" -C "$P" release --force -q >"$T/out2" 2>&1
expect_eq "release --force" $? 0
after=$(sha256sum "$P"/dist/images/*.png "$P/dist/provenance.json" "$P/dist/ipfs.json")
expect_eq "the same catalog gives the same signed bytes and CIDs" "$after" "$before"

# one IDAT byte changed (CRC fixed, manifest.sha256 rewritten): kiln verify and c2pa-rs fail
rm -rf "$T/d"
cp -r "$P/dist" "$T/d"
$PY "$KILN_SRC/tests/portfolio-c2pa/tamper.py" "$P/dist/images/4.png" "$T/d/images/4.png" idat
(cd "$T/d" && find . -type f ! -name manifest.sha256 | sed 's|^\./||' | LC_ALL=C sort |
	xargs sha256sum >manifest.sha256)
"$KILN" verify "$T/d" >"$T/v.idat" 2>&1
expect_eq "idat: kiln verify fails" $? 1
expect_contains "idat: the C2PA check names the image" "$T/v.idat" "images/4.png: C2PA hash.data"
node "$ORACLE" "$ROOT" "$T/d/images/4.png" >"$T/oracle.idat" 2>&1
expect_contains "idat: c2pa-rs says Invalid" "$T/oracle.idat" '"state":"Invalid"'
finish
