#!/bin/sh
# kiln's C2PA manifests read by tools nobody here wrote: the c2pa-rs engine (npm
# @contentauth/c2pa-wasm, in Node) with the studio's root as the only trust anchor, and exiftool
# for the XMP; every forgery must be caught by c2pa-rs and by kiln's own verify alike.
#
#   sh tests/portfolio-c2pa/compare.sh build/kiln_c2pa_tool
#
# Prints "N passed, N failed"; exits non-zero on any failure.
set -u
here=$(cd "$(dirname "$0")" && pwd)
tool=${1:?usage: compare.sh KILN_C2PA_TOOL}
work=$(mktemp -d "${TMPDIR:-/tmp}/kiln-c2pa.XXXXXX")
trap 'rm -rf "$work"' EXIT
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }

command -v node >/dev/null || { echo "compare.sh: node is not installed" >&2; exit 2; }
[ -d "$here/node_modules/@contentauth/c2pa-wasm" ] ||
	(cd "$here" && npm ci --no-audit --no-fund >/dev/null) || exit 2

oracle() { node "$here/oracle.mjs" "$1" "$2"; }
# expect_state FILE ROOT STATE [CODE]: c2pa-rs' state, and that CODE is among its failures
expect_state() {
	out=$(oracle "$1" "$2")
	case $out in
	*"\"state\":\"$3\""*) ;;
	*) bad "c2pa-rs on $(basename "$1"): want $3, got $out"; return ;;
	esac
	if [ -n "${4:-}" ]; then
		case $out in
		*"\"$4\""*) ;;
		*) bad "c2pa-rs on $(basename "$1"): want failure $4, got $out"; return ;;
		esac
	fi
	ok
}
# expect_kiln FILE ROOT ok|CHECK: kiln's own verify passes, or fails that check
expect_kiln() {
	out=$("$tool" verify "$1" "$2")
	rc=$?
	if [ "$3" = ok ]; then
		[ $rc = 0 ] && ok || bad "kiln verify $(basename "$1"): want ok, got $rc $out"
	else
		case "$rc $out" in
		"1 failed $3:"*) ok ;;
		*) bad "kiln verify $(basename "$1"): want failed $3, got $rc $out" ;;
		esac
	fi
}

python3 "$here/draw_png.py" "$work/drawn.png" 48 32 || exit 2
mkdir "$work/keys" "$work/other"
"$tool" keys "$work/keys" "Owl Studio" || exit 2
"$tool" keys "$work/other" "Someone Else" || exit 2
root=$work/keys/c2pa-root.pem

# the key is private, the certificates are not
case $(stat -c %a "$work/keys/c2pa-leaf.key") in 600) ok ;; *) bad "c2pa-leaf.key is not 0600" ;; esac

# a token made by a model as it came, and one edited by a person and polished
"$tool" sign "$work/drawn.png" "$work/created.png" "$work/keys" || exit 2
"$tool" sign "$work/drawn.png" "$work/edited.png" "$work/keys" composite \
	"repainted the left eye by hand" "polish: palette reduced to 32 colours" || exit 2
for f in created edited; do
	expect_state "$work/$f.png" "$root" Trusted
	expect_kiln "$work/$f.png" "$root" ok
done
out=$(oracle "$work/edited.png" "$root")
case $out in
*'"c2pa.created http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia","c2pa.edited \"repainted the left eye by hand\"","c2pa.edited \"polish: palette reduced to 32 colours\""]'*) ok ;;
*) bad "actions of edited.png as c2pa-rs reads them: $out" ;;
esac
case $(oracle "$work/created.png" "$root") in
*'"actions":["c2pa.created http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"]'*'"token_id":7'*) ok ;;
*) bad "created.png: actions or dev.kiln.provenance as c2pa-rs reads them" ;;
esac

# signed again: still one manifest, still trusted
"$tool" sign "$work/edited.png" "$work/resigned.png" "$work/keys" || exit 2
expect_state "$work/resigned.png" "$root" Trusted
[ "$(grep -c caBX "$work/resigned.png")" = 1 ] && ok || bad "resigned.png has more than one caBX"

# the XMP is still there for exiftool
xmp=$(exiftool -s3 -XMP-iptcExt:DigitalSourceType "$work/edited.png")
[ "$xmp" = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia" ] && ok ||
	bad "exiftool reads DigitalSourceType '$xmp'"

# another studio's root is no trust anchor for ours
expect_state "$work/edited.png" "$work/other/c2pa-root.pem" Valid signingCredential.untrusted
expect_kiln "$work/edited.png" "$work/other/c2pa-root.pem" chain

# forgeries
python3 "$here/tamper.py" "$work/edited.png" "$work/idat.png" idat || exit 2
expect_state "$work/idat.png" "$root" Invalid assertion.dataHash.mismatch
expect_kiln "$work/idat.png" "$root" hash.data
python3 "$here/tamper.py" "$work/edited.png" "$work/assertion.png" text 1f2e3d4c || exit 2
expect_state "$work/assertion.png" "$root" Invalid assertion.hashedURI.mismatch
expect_kiln "$work/assertion.png" "$root" assertion
python3 "$here/tamper.py" "$work/edited.png" "$work/edit.png" text "repainted" || exit 2
expect_state "$work/edit.png" "$root" Invalid assertion.hashedURI.mismatch
expect_kiln "$work/edit.png" "$root" assertion
python3 "$here/tamper.py" "$work/edited.png" "$work/sig.png" signature || exit 2
expect_state "$work/sig.png" "$root" Invalid claimSignature.mismatch
expect_kiln "$work/sig.png" "$root" signature
python3 "$here/tamper.py" "$work/edited.png" "$work/title.png" text "kiln test token" || exit 2
expect_state "$work/title.png" "$root" Invalid claimSignature.mismatch
expect_kiln "$work/title.png" "$root" signature

# a leaf outside C2PA's certificate profile (no extended key usage), made with openssl:
# c2pa-rs and kiln both refuse it though it chains to its root
mk=$work/noeku
mkdir "$mk"
(
	cd "$mk" || exit 1
	openssl ecparam -name prime256v1 -genkey -noout -out root.key &&
	openssl req -x509 -new -key root.key -subj "/CN=No EKU Root" -days 3650 -sha256 \
		-addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign" \
		-out c2pa-root.pem &&
	openssl ecparam -name prime256v1 -genkey -noout -out leaf.key &&
	openssl pkcs8 -topk8 -nocrypt -in leaf.key -out c2pa-leaf.key &&
	openssl req -new -key leaf.key -subj "/CN=No EKU Signer" -out leaf.csr &&
	printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid:always\n' > ext.cnf &&
	openssl x509 -req -in leaf.csr -CA c2pa-root.pem -CAkey root.key -CAcreateserial \
		-days 3650 -sha256 -extfile ext.cnf -out c2pa-leaf.pem
) >/dev/null 2>&1 || { echo "compare.sh: openssl could not make the test chain" >&2; exit 2; }
"$tool" sign "$work/drawn.png" "$work/noeku.png" "$mk" || exit 2
expect_state "$work/noeku.png" "$mk/c2pa-root.pem" Invalid signingCredential.invalid
expect_kiln "$work/noeku.png" "$mk/c2pa-root.pem" certificate

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
