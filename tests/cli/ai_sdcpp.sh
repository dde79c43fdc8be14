# AI engine sdcpp: async jobs, LoRA as the structured field, retries on failed and lost jobs.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ai_common.inc"
start_server --protocol sdcpp
P=$T/p
# what sd-server cannot honour is refused at load time, with the line: a checkpoint (it runs
# the model it was started with), a ControlNet guidance range, a sampler it does not have
ai_owls "$P" sdcpp 's/, auth_env: KILN_GPU_AUTH//'
"$KILN" -C "$P" plan -q 2>"$T/err"
expect_eq "checkpoint on sd-server refused" $? 2
expect_contains "checkpoint refusal" "$T/err" "kiln.yaml:17:15: endpoint $U is sd-server"
sed -i '/^  checkpoint:/d' "$P/kiln.yaml"
"$KILN" -C "$P" plan -q 2>"$T/err"
expect_eq "guidance range on sd-server refused" $? 2
expect_contains "guidance refusal" "$T/err" "does not honour controlnet guidance_start/guidance_end"
sed -i 's/, guidance_end: 0.8//; s/sampler: "Euler a"/sampler: "DPM++ SDE Karras"/' "$P/kiln.yaml"
"$KILN" -C "$P" plan -q 2>"$T/err"
expect_eq "sampler sd-server lacks refused" $? 2
expect_contains "sampler refusal" "$T/err" "'DPM++ SDE' cannot run on endpoint $U (sdcpp has no such sampler): sdcpp accepts 'Euler a', 'Euler', 'Heun', 'DPM2', 'DPM++ 2S a', 'DPM++ 2M', 'DPM++ 2M SDE', 'LMS', 'LCM'"
# a prompt that is not Latin-1: its images' parameters must be iTXt
ai_owls "$P" sdcpp 's/, auth_env: KILN_GPU_AUTH//; s/"purple dusk sky"/"purple dusk sky, 夕焼け"/; /^  checkpoint:/d; s/, guidance_end: 0.8//'
"$KILN" -C "$P" plan -q || fail plan
"$KILN" -C "$P" render -q
expect_eq "render exit" $? 0
requests /sdcpp/v1/img_gen | $PY -c '
import sys, json
n = 0
for r in json.load(sys.stdin):
    j = r["json"]; n += 1
    assert "<lora" not in j["prompt"]
    assert j["sample_params"]["sample_method"] == "euler_a" and j["sample_params"]["sample_steps"] == 20
    assert j["sample_params"]["guidance"]["txt_cfg"] == 7
    if "golden crown" in j["prompt"]:
        assert {"path": "crown_v2.safetensors", "multiplier": 0.8} in j["lora"], j["lora"]
    if "glowing halo" in j["prompt"]:
        assert len(j["control_image"]) > 100 and j["control_strength"] == 0.7
assert n == 59, n
print("ok")' >"$T/check" 2>&1
expect_contains "requests" "$T/check" ok
expect_eq "rendered" "$(sqlite3 "$P/.kiln/catalog.db" "select count(*) from items where status='rendered'")" 60
# released images: the infotext built from the request, iTXt for the Dusk owls
check_disclosure "$P" /sdcpp/v1/img_gen
$PY -c "
import sys
from PIL import Image
n = sum('夕焼け' in Image.open(f'$P/dist/images/{i}.png').text.get('parameters', '') for i in range(1, 61))
print('dusk', n > 0)" >"$T/dusk" 2>&1
expect_contains "a non-Latin-1 prompt read back" "$T/dusk" "dusk True"
config '{"lose_rate": 0.1, "exec_fail_rate": 0.1, "fail_rate": 0.1}'
"$KILN" -C "$P" render --force -q
expect_eq "render with faults" $? 0
sqlite3 "$P/.kiln/catalog.db" "select error from renders where status='failed'" >"$T/errors"
expect_contains "lost job resubmitted" "$T/errors" "gone from the server"
expect_contains "failed job retried" "$T/errors" "failed"
finish
