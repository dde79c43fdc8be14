#!/bin/sh
# kiln's C2PA manifests read by tools nobody here wrote: the c2pa-rs engine (npm
# @contentauth/c2pa-wasm, in Node) with the studio's root as the only trust anchor, and exiftool
# for the XMP; every forgery must be caught by c2pa-rs and by kiln's own verify alike.
#
#   sh tests/portfolio-c2pa/compare.sh build/kiln_c2pa_tool
#
# Every file is made first, then c2pa-rs reads them in one Node process per trust anchor
# (loading the WASM engine takes a second or two). Prints "N passed, N failed"; exits non-zero
# on any failure.
set -u
here=$(cd "$(dirname "$0")" && pwd)
tool=${1:?usage: compare.sh KILN_C2PA_TOOL}
mkdir -p "${TMPDIR:-/tmp}" || exit 2
work=$(mktemp -d "${TMPDIR:-/tmp}/kiln-c2pa.XXXXXX") && [ -d "$work" ] || {
	echo "compare.sh: cannot make a scratch folder in ${TMPDIR:-/tmp}" >&2
	exit 2
}
trap 'rm -rf "$work"' EXIT
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
die() { echo "compare.sh: $*" >&2; exit 2; }

command -v node >/dev/null || die "node is not installed"
[ -d "$here/node_modules/@contentauth/c2pa-wasm" ] ||
	(cd "$here" && npm ci --no-audit --no-fund >/dev/null) || die "npm ci failed in $here"

# ---- the files ----
python3 "$here/draw_png.py" "$work/drawn.png" 48 32 || die "cannot draw the PNG"
mkdir "$work/keys" "$work/other"
"$tool" keys "$work/keys" "Owl Studio" || die "keys"
"$tool" keys "$work/other" "Someone Else" || die "keys"
root=$work/keys/c2pa-root.pem
sign() { "$tool" sign "$@" || die "sign $*"; }
tamper() { python3 "$here/tamper.py" "$@" || die "tamper $*"; }

# a token made by a model as it came, one edited by a person and polished, one signed twice
sign "$work/drawn.png" "$work/created.png" "$work/keys"
sign "$work/drawn.png" "$work/edited.png" "$work/keys" composite \
	"repainted the left eye by hand" "polish: palette reduced to 32 colours"
sign "$work/edited.png" "$work/resigned.png" "$work/keys"
# forgeries, each still a well-formed PNG (CRCs recomputed)
tamper "$work/edited.png" "$work/idat.png" idat
tamper "$work/edited.png" "$work/assertion.png" text 1f2e3d4c
tamper "$work/edited.png" "$work/edit.png" text "repainted"
tamper "$work/edited.png" "$work/sig.png" signature
tamper "$work/edited.png" "$work/title.png" text "kiln test token"
# leaves outside C2PA's certificate profile, made by openssl: each chains to its root, yet
# c2pa-rs and kiln must both refuse it (no extended key usage; no key usage)
badchain() { # dir leaf-extensions...
	mk=$1
	shift
	mkdir -p "$mk"
	(
		cd "$mk" || exit 1
		openssl ecparam -name prime256v1 -genkey -noout -out root.key &&
		openssl req -x509 -new -key root.key -subj "/CN=Test Root" -days 3650 -sha256 \
			-addext "basicConstraints=critical,CA:TRUE" \
			-addext "keyUsage=critical,keyCertSign" -out c2pa-root.pem &&
		openssl ecparam -name prime256v1 -genkey -noout -out leaf.key &&
		openssl pkcs8 -topk8 -nocrypt -in leaf.key -out c2pa-leaf.key &&
		openssl req -new -key leaf.key -subj "/CN=Test Signer" -out leaf.csr &&
		printf '%s\n' "$@" > ext.cnf &&
		openssl x509 -req -in leaf.csr -CA c2pa-root.pem -CAkey root.key -CAcreateserial \
			-days 3650 -sha256 -extfile ext.cnf -out c2pa-leaf.pem
	) >/dev/null 2>&1 || die "openssl could not make the test chain $mk"
}
badchain "$work/noeku" "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" \
	"subjectKeyIdentifier=hash" "authorityKeyIdentifier=keyid:always"
badchain "$work/noku" "basicConstraints=critical,CA:FALSE" "extendedKeyUsage=emailProtection" \
	"subjectKeyIdentifier=hash" "authorityKeyIdentifier=keyid:always"
mk=$work/noeku
sign "$work/drawn.png" "$work/noku.png" "$work/noku"
sign "$work/drawn.png" "$work/noeku.png" "$mk"

# ---- c2pa-rs reads them ----
node "$here/oracle.mjs" "$root" "$work"/created.png "$work"/edited.png "$work"/resigned.png \
	"$work"/idat.png "$work"/assertion.png "$work"/edit.png "$work"/sig.png \
	"$work"/title.png > "$work/ours.txt" || die "the oracle failed"
node "$here/oracle.mjs" "$work/other/c2pa-root.pem" "$work/edited.png" > "$work/theirs.txt" ||
	die "the oracle failed"
node "$here/oracle.mjs" "$mk/c2pa-root.pem" "$work/noeku.png" > "$work/noeku.txt" ||
	die "the oracle failed"
node "$here/oracle.mjs" "$work/noku/c2pa-root.pem" "$work/noku.png" > "$work/noku.txt" ||
	die "the oracle failed"

# c2pa-rs' line for FILE in LIST
oracle() { grep "^$1	" "$2" | cut -f2-; }
# expect_state FILE LIST STATE [CODE]: c2pa-rs' state, and that CODE is among its failures
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

# the key is private
case $(stat -c %a "$work/keys/c2pa-leaf.key") in 600) ok ;; *) bad "c2pa-leaf.key is not 0600" ;; esac

for f in created edited resigned; do
	expect_state "$work/$f.png" "$work/ours.txt" Trusted
	expect_kiln "$work/$f.png" "$root" ok
done
case $(oracle "$work/edited.png" "$work/ours.txt") in
*'"c2pa.created http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia","c2pa.edited \"repainted the left eye by hand\"","c2pa.edited \"polish: palette reduced to 32 colours\""]'*) ok ;;
*) bad "actions of edited.png as c2pa-rs reads them: $(oracle "$work/edited.png" "$work/ours.txt")" ;;
esac
case $(oracle "$work/created.png" "$work/ours.txt") in
*'"actions":["c2pa.created http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"]'*'"token_id":7'*) ok ;;
*) bad "created.png: actions or dev.kiln.provenance as c2pa-rs reads them" ;;
esac
[ "$(grep -c caBX "$work/resigned.png")" = 1 ] && ok || bad "resigned.png has more than one caBX"

# the XMP is still there for exiftool
xmp=$(exiftool -s3 -XMP-iptcExt:DigitalSourceType "$work/edited.png")
[ "$xmp" = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia" ] && ok ||
	bad "exiftool reads DigitalSourceType '$xmp'"

# another studio's root is no trust anchor for ours
expect_state "$work/edited.png" "$work/theirs.txt" Valid signingCredential.untrusted
expect_kiln "$work/edited.png" "$work/other/c2pa-root.pem" chain

# forgeries
expect_state "$work/idat.png" "$work/ours.txt" Invalid assertion.dataHash.mismatch
expect_kiln "$work/idat.png" "$root" hash.data
expect_state "$work/assertion.png" "$work/ours.txt" Invalid assertion.hashedURI.mismatch
expect_kiln "$work/assertion.png" "$root" assertion
expect_state "$work/edit.png" "$work/ours.txt" Invalid assertion.hashedURI.mismatch
expect_kiln "$work/edit.png" "$root" assertion
expect_state "$work/sig.png" "$work/ours.txt" Invalid claimSignature.mismatch
expect_kiln "$work/sig.png" "$root" signature
expect_state "$work/title.png" "$work/ours.txt" Invalid claimSignature.mismatch
expect_kiln "$work/title.png" "$root" signature

# outside the certificate profile
expect_state "$work/noeku.png" "$work/noeku.txt" Invalid signingCredential.invalid
expect_kiln "$work/noeku.png" "$mk/c2pa-root.pem" certificate
expect_state "$work/noku.png" "$work/noku.txt" Invalid signingCredential.invalid
expect_kiln "$work/noku.png" "$work/noku/c2pa-root.pem" certificate

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
