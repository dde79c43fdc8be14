# AI engine sdcpp: async jobs, LoRA as the structured field, retries on failed and lost jobs.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ai_common.inc"
start_server --protocol sdcpp
P=$T/p
# a prompt that is not Latin-1: its images' parameters must be iTXt
ai_owls "$P" sdcpp 's/, auth_env: KILN_GPU_AUTH//; s/"purple dusk sky"/"purple dusk sky, 夕焼け"/'
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
        assert {"path": "crown_v2", "multiplier": 0.8} in j["lora"], j["lora"]
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
