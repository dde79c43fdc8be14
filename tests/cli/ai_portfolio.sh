# The portfolio of an AI collection (A1111 test server): with prompts: hashed no prompt text is
# in the log, the attestations, portfolio.json or index.html, only "sha256:<hex>" commitments
# that the texts hash to; with public the texts are published and match those commitments; a
# registered checkpoint the spec names is a resolvedDependency of every token. With hashed, the
# released PNGs lose the prompt's text chunks (A1111's parameters): no byte of dist/ and
# nothing exiftool reads there holds a prompt word, and the history ends in those bytes
# (a prompt.redacted entry, logged once); with public they keep it.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ai_common.inc"
export KILN_KEYS_DIR=$T/keys
"$KILN" keys init --studio example.com/ai-owls >/dev/null
mkdir -p "$T/ckpt"
printf 'not really a checkpoint' >"$T/ckpt/sd_xl_base_1.0.safetensors"
start_server --protocol a1111 --auth owl:hoot --checkpoint-dir "$T/ckpt"
export KILN_GPU_AUTH=owl:hoot
P=$T/ai
ai_owls "$P" a1111 's/prompt: "pixel art owl/prompt: "quokkagraph pixel art owl/'
printf 'portfolio: {enabled: true, prompts: hashed}\n' >>"$P/kiln.yaml"
# the server's file, as a .ckpt (a .safetensors is parsed): the name and hash are the same
cp "$T/ckpt/sd_xl_base_1.0.safetensors" "$T/sd_xl_base_1.0.ckpt"
"$KILN" -C "$P" plan -q >/dev/null 2>&1
"$KILN" -C "$P" models add "$T/sd_xl_base_1.0.ckpt" --license CreativeML-OpenRAIL++-M >/dev/null
expect_eq "models add" $? 0
"$KILN" -C "$P" build -q --no-qa >"$T/out" 2>&1
expect_eq "build (hashed prompts)" $? 0
check() { # mode
	$PY - "$P" "$1" <<'PY'
import base64, hashlib, json, os, sqlite3, sys
p, mode = sys.argv[1], sys.argv[2]
pf = p + "/dist/portfolio"
db = sqlite3.connect(p + "/.kiln/catalog.db")
prompts = set()
for (r,) in db.execute("select request from renders where status = 'ok' and request is not null"):
    j = json.loads(r)
    prompts.add(j["prompt"])
assert prompts
H = lambda t: "sha256:" + hashlib.sha256(t.encode()).hexdigest()
log = open(pf + "/log/entries.jsonl").read()
page = open(pf + "/index.html").read()
pj = json.load(open(pf + "/portfolio.json"))
for t in prompts:
    assert t not in log, "prompt text in the log"
    assert H(t) in log, "the log lacks a prompt's commitment"
    if mode == "hashed":
        assert t not in page and t not in json.dumps(pj), "prompt text published"
    else:
        assert pj["prompt_texts"][H(t)] == t
        esc = t.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        assert esc.replace('"', "&quot;").replace("'", "&#39;") in page, t
n = 0
for f in os.listdir(pf + "/attestations"):
    b = json.load(open(pf + "/attestations/" + f))
    st = json.loads(base64.b64decode(b["dsseEnvelope"]["payload"]))
    bd = st["predicate"]["buildDefinition"]
    if bd["externalParameters"]["request"] is None:
        continue  # the hand-made legendary: no request
    pr = bd["externalParameters"]["request"]["prompt"]
    assert (pr.startswith("sha256:")) == (mode == "hashed"), pr
    names = [d.get("name") for d in bd["resolvedDependencies"]]
    assert "sd_xl_base_1.0" in names, names
    n += 1
assert n == 59, n
print("ok", mode, len(prompts))
PY
}
check hashed >"$T/c" 2>&1
expect_contains "hashed: commitments only ($(tail -2 "$T/c"))" "$T/c" "ok hashed"
"$KILN" -C "$P" verify >"$T/v" 2>&1
expect_eq "kiln verify (hashed: the history ends in the stripped bytes) $(head -3 "$T/v")" $? 0
grep -rlaF quokkagraph "$P/dist" >"$T/leak"
expect_eq "no prompt word in any byte of dist/ ($(head -3 "$T/leak"))" "$(wc -l <"$T/leak")" 0
exiftool -r -a -u -G1 "$P/dist" 2>&1 | grep -ci quokkagraph >"$T/leak"
expect_eq "no prompt word in what exiftool reads in dist/" "$(cat "$T/leak")" 0
exiftool -a -G1 -XMP:all "$P/dist/images/1.png" >"$T/xmp" 2>&1
expect_contains "the XMP disclosure stays" "$T/xmp" "Digital Source Type"
red() { grep -c '"kind":"prompt.redacted"' "$P/dist/portfolio/log/entries.jsonl"; }
n1=$(red)
expect_eq "a prompt.redacted entry per AI token" "$n1" 59
"$KILN" -C "$P" release --force -q --allow-qa-failures >/dev/null 2>&1
expect_eq "released again: no new prompt.redacted entry" "$(red)" "$n1"
sed -i 's/prompts: hashed/prompts: public/' "$P/kiln.yaml"
"$KILN" -C "$P" build -q --no-qa >"$T/out" 2>&1
expect_eq "build (public prompts)" $? 0
check public >"$T/c" 2>&1
expect_contains "public: texts that match the log's commitments ($(tail -2 "$T/c"))" "$T/c" "ok public"
exiftool -a -G1 "$P/dist/images/1.png" >"$T/pub" 2>&1
expect_contains "public: the PNG keeps its parameters text" "$T/pub" "quokkagraph"
"$KILN" -C "$P" verify >"$T/v" 2>&1
expect_eq "kiln verify" $? 0
finish
