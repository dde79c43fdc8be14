# kiln keys: an Ed25519 key made once (never replaced), private files 0600 in a 0700 folder
# named by KILN_KEYS_DIR, the public parts shown; a signature made with it checks with openssl.
. "$(dirname "$0")/lib.sh"
export KILN_KEYS_DIR=$T/keys
"$KILN" keys show >"$T/o" 2>&1
expect_eq "show before init fails" $? 1
expect_contains "show names the missing key and what to run" "$T/o" "kiln keys init"
"$KILN" keys init --studio "bad name" >"$T/o" 2>&1
expect_eq "a name with a space is refused" $? 2
"$KILN" keys init --studio example.com/owls >"$T/o" 2>&1
expect_eq "init" $? 0
expect_contains "init prints the verifier key" "$T/o" "example.com/owls+"
expect_eq "folder mode" "$(stat -c %a "$KILN_KEYS_DIR")" 700
for f in signing-ed25519.key signing-ed25519.pub studio; do
	expect_eq "$f mode" "$(stat -c %a "$KILN_KEYS_DIR/$f")" 600
done
before=$(sha256sum "$KILN_KEYS_DIR/signing-ed25519.key")
"$KILN" keys init --studio other >"$T/o" 2>&1
expect_eq "a second init is refused" $? 1
expect_contains "it says why" "$T/o" "never replaced"
expect_eq "the key is unchanged" "$(sha256sum "$KILN_KEYS_DIR/signing-ed25519.key")" "$before"
"$KILN" keys show --json >"$T/j"
expect_eq "show --json" $? 0
$PY - "$T/j" "$KILN_KEYS_DIR" <<'PY' >"$T/py" 2>&1
import json, sys, base64, hashlib
j = json.load(open(sys.argv[1]))
pem = open(sys.argv[2] + "/signing-ed25519.pub").read()
assert j["public_key_pem"] == pem, "the shown key is the file's"
name, kid, b = j["note_vkey"].split("+", 2)
raw = base64.b64decode(b)
assert name == "example.com/owls" and raw[0] == 1 and len(raw) == 33
want = hashlib.sha256(name.encode() + b"\n" + raw).hexdigest()[:8]
assert kid == want, (kid, want)
assert j["key_hint"] == hashlib.sha256(raw[1:]).hexdigest()
PY
expect_eq "vkey is C2SP's name+id+key ($(cat "$T/py"))" $? 0
# the PEM files are what openssl reads
printf 'hello' >"$T/msg"
openssl pkeyutl -sign -rawin -inkey "$KILN_KEYS_DIR/signing-ed25519.key" -in "$T/msg" \
	-out "$T/sig" 2>"$T/err"
expect_eq "openssl signs with the key" $? 0
openssl pkeyutl -verify -rawin -pubin -inkey "$KILN_KEYS_DIR/signing-ed25519.pub" \
	-in "$T/msg" -sigfile "$T/sig" >"$T/err" 2>&1
expect_eq "openssl verifies with the public key" $? 0
finish
