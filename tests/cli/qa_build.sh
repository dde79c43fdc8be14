# kiln build runs QA between render and release (issue 11): an all-black token stops the
# build before release, naming the check and the token; --no-qa and qa: {gate: false} opt out.
. "$(dirname "$0")/lib.sh"
P=$T/owls
owls "$P"
# the Halo hat (3 owls, the top layer) becomes an opaque black square: those owls are all black
$PY -c "
import struct, zlib
def chunk(t, b): return struct.pack('>I', len(b)) + t + b + struct.pack('>I', zlib.crc32(t + b) & 0xffffffff)
raw = zlib.compress((b'\x00' + b'\x00\x00\x00\xff' * 256) * 256)
open('$P/layers/Hat/halo.png', 'wb').write(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', 256, 256, 8, 6, 0, 0, 0)) + chunk(b'IDAT', raw) + chunk(b'IEND', b''))"
halo=$("$KILN" -C "$P" plan -q >/dev/null 2>&1; "$KILN" -C "$P" ls --json | $PY -c "
import json, sys
print(min(o['id'] for o in map(json.loads, sys.stdin) if o['traits'].get('Hat') == 'Halo'))")
"$KILN" -C "$P" build >"$T/out" 2>"$T/err"
expect_eq "build with black tokens exits 1" $? 1
expect_contains "names the check" "$T/err" "qa check image.black failed"
expect_contains "names the token" "$T/err" "token $halo ($halo.png)"
expect_contains "says release was not run" "$T/err" "release was not run"
expect_eq "dist/ not written" "$([ -e "$P/dist" ] && echo written || echo absent)" absent
expect_contains "the qa summary" "$T/out" "qa: 60 images checked"
# the verdicts are the catalog's: kiln status / release see them
"$KILN" -C "$P" release -q >"$T/rel" 2>&1
expect_eq "release alone refuses the failed tokens" $? 1
# --json: a qa summary line that did not pass
"$KILN" -C "$P" build --json >"$T/b.json" 2>/dev/null
expect_eq "build --json exits 1" $? 1
expect_contains "qa summary in --json" "$T/b.json" '"stage":"qa","images":60'
expect_contains "qa did not pass" "$T/b.json" '"passed":false'
# --no-qa: QA does not run, release happens
"$KILN" -C "$P" build --no-qa >"$T/out" 2>"$T/err"
expect_eq "build --no-qa exits 0 ($(cat "$T/err"))" $? 0
expect_eq "dist/ written with --no-qa" "$(ls "$P/dist/images" 2>/dev/null | wc -l)" 60
if grep -q "^qa:" "$T/out"; then fail "--no-qa ran QA"; else ok; fi
# qa: {gate: false}: QA runs and reports, the release is not blocked
rm -rf "$P/dist"
printf 'qa: {gate: false}\n' >>"$P/kiln.yaml"
"$KILN" -C "$P" build >"$T/out" 2>"$T/err"
expect_eq "gate: false exits 0 ($(cat "$T/err"))" $? 0
expect_contains "QA still reports" "$T/out" "FAILED (qa.gate is false: not blocking)"
expect_eq "dist/ written with gate: false" "$(ls "$P/dist/images" 2>/dev/null | wc -l)" 60
# gate: must be a boolean
sed -i 's/qa: {gate: false}/qa: {gate: maybe}/' "$P/kiln.yaml"
"$KILN" -C "$P" build >"$T/out" 2>&1
expect_eq "gate: maybe is a spec error" $? 2
expect_contains "names qa.gate" "$T/out" "qa.gate must be true or false"
finish
