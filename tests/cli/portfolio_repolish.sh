# A polish chain replaced by a re-polish (issue 15): the released image's C2PA manifest lists
# the edits of the chain that made it, not those of the replaced one (read by c2pa-rs, the
# @contentauth/c2pa-wasm oracle of tests/portfolio-c2pa/, with the studio root as anchor).
# Both chains stay in the log (it is append-only); only the manifest's actions are the chain's.
. "$(dirname "$0")/lib.sh"
ORACLE=$KILN_SRC/tests/portfolio-c2pa/oracle.mjs
export KILN_KEYS_DIR=$T/keys
"$KILN" keys init --studio example.com/owls >/dev/null
P=$T/owls
owls "$P"
cat >>"$P/kiln.yaml" <<'EOF2'
portfolio: {enabled: true}
polish:
  - upscale: {factor: 2, method: nearest}
EOF2
rel() { "$KILN" -C "$P" release -q --allow-qa-failures --allow-unreviewed >"$T/out" 2>&1; }
"$KILN" -C "$P" plan -q && "$KILN" -C "$P" render -q || fail "plan/render"
"$KILN" -C "$P" polish -q >/dev/null 2>&1 || fail "polish"
rel
expect_eq "release ($(head -3 "$T/out"))" $? 0
sed -i 's/factor: 2/factor: 4/' "$P/kiln.yaml"
"$KILN" -C "$P" plan -q && "$KILN" -C "$P" polish -q >/dev/null 2>&1 || fail "re-polish"
rel
expect_eq "release after the re-polish ($(head -3 "$T/out"))" $? 0
L=$P/dist/portfolio/log/entries.jsonl
expect_eq "both chains in the log" "$(grep '"item":1,' "$L" | grep -c '"kind":"polish.step"')" 2
node "$ORACLE" "$P/dist/portfolio/keys/c2pa-root.pem" "$P/dist/images/1.png" >"$T/o" 2>&1
expect_eq "c2pa-wasm ran ($(head -3 "$T/o"))" $? 0
expect_contains "trusted" "$T/o" '"state":"Trusted"'
expect_contains "the chain's step" "$T/o" \
	'"actions":["c2pa.created http://cv.iptc.org/newscodes/digitalsourcetype/compositeSynthetic","c2pa.edited \"upscale\""]'
"$KILN" verify "$P/dist" >"$T/v" 2>&1
expect_eq "kiln verify ($(head -3 "$T/v"))" $? 0
finish
