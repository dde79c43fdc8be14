# AI engine comfyui: the workflow bound per item (seed, texts, LoraLoader chain, ControlNet
# with the image uploaded), then kill -9 mid-run twice: every item ends rendered once, and no
# prompt runs twice on the server (jobs that finished while kiln was down are collected).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ai_common.inc"
start_server --protocol comfyui --token tok-s3cret --latency-ms 150
P=$T/p
ai_owls "$P" comfyui 's/concurrency: 1, auth_env: KILN_GPU_AUTH/concurrency: 2, token_env: KILN_GPU_TOKEN/'
export KILN_GPU_TOKEN=tok-s3cret
"$KILN" -C "$P" plan -q || fail plan
"$KILN" -C "$P" render --dry-run 3 >"$T/dry"
expect_contains "dry-run posts the prompt" "$T/dry" "POST $U/prompt"
expect_contains "dry-run bearer named" "$T/dry" 'Bearer <token from $KILN_GPU_TOKEN'
grep -q s3cret "$T/dry" && fail "secret in dry-run" || ok
for delay in 1.5 2.5; do
	"$KILN" -C "$P" render -q 2>/dev/null &
	pid=$!
	sleep $delay
	kill -9 $pid 2>/dev/null
	wait $pid 2>/dev/null
done
"$KILN" -C "$P" render -q
expect_eq "render after kills" $? 0
DB=$P/.kiln/catalog.db
expect_eq "one accepted render per item" \
	"$(sqlite3 "$DB" "select count(*), count(distinct item_id) from renders where status='ok' and engine='comfyui'")" "59|59"
expect_eq "rendered items" "$(sqlite3 "$DB" "select count(*) from items where status='rendered'")" 60
expect_eq "nothing in flight" "$(sqlite3 "$DB" "select count(*) from ai_inflight")" 0
stats | $PY -c '
import sys, json
s = json.load(sys.stdin)
ex = s["comfy_executions"]
assert len(ex) == 59, len(ex)
assert max(ex.values()) == 1, [k for k, v in ex.items() if v > 1]
print("ok", s["jobs_done"])' >"$T/stats" 2>&1
expect_contains "no prompt ran twice" "$T/stats" ok
# the graphs as sent
requests /prompt | $PY -c '
import sys, json
for r in json.load(sys.stdin):
    j = r["json"]; g = j["prompt"]
    assert r["headers"]["authorization"] == "Bearer tok-s3cret"
    assert j["prompt_id"] and j["client_id"] == "kiln"
    ks = g["3"]["inputs"]
    assert ks["sampler_name"] == "euler_ancestral" and ks["steps"] == 20 and ks["cfg"] == 7
    assert g["4"]["inputs"]["ckpt_name"] == "sd_xl_base_1.0.safetensors"
    assert g["5"]["inputs"]["width"] == 512
    assert g["6"]["inputs"]["text"].startswith("pixel art owl")
    assert g["7"]["inputs"]["text"].startswith("blurry")
    loras = [n for n in g.values() if n["class_type"] == "LoraLoader"]
    text = g["6"]["inputs"]["text"]
    if "golden crown" in text:
        assert any(l["inputs"]["lora_name"] == "crown_v2.safetensors" and l["inputs"]["strength_model"] == 0.8 for l in loras)
    if loras:  # the sampler and the text encoders use the end of the chain
        assert ks["model"][0].startswith("kiln_lora_") and g["6"]["inputs"]["clip"][0].startswith("kiln_lora_")
    if "glowing halo" in text:
        ap = g["kiln_cn_0"]["inputs"]
        assert ap["strength"] == 0.7 and ap["end_percent"] == 0.8
        assert g["kiln_cn_0_loader"]["inputs"]["control_net_name"] == "control_v11p_sd15_canny.pth"
        assert g["kiln_cn_0_image"]["inputs"]["image"].startswith("kiln_")
        assert ks["positive"] == ["kiln_cn_0", 0] and ks["negative"] == ["kiln_cn_0", 1]
print("ok")' >"$T/graphs" 2>&1
expect_contains "graphs bound" "$T/graphs" ok
# released images: the infotext built from the request (ComfyUI writes its graph, not one)
check_disclosure "$P" /prompt
expect_eq "control image uploaded" "$(stats | $PY -c 'import sys,json; print(json.load(sys.stdin)["uploads"] > 0)')" True
sqlite3 "$DB" .dump | grep -c s3cret >"$T/grep"
expect_eq "secret not in catalog" "$(cat "$T/grep")" 0
# a lost job and a failed execution are sent again (with a new prompt_id), others are not
config '{"lose_rate": 0.1, "exec_fail_rate": 0.1, "latency_ms": 0}'
"$KILN" -C "$P" render --force -q
expect_eq "render with lost jobs" $? 0
expect_eq "all rendered again" "$(sqlite3 "$DB" "select count(*) from renders where status='ok' and engine='comfyui'")" 118
finish
