# AI engine sdcpp against a server as lenient as the real sd-server (issue 12): what it would
# clamp or refuse is refused at load with the line (steps over 100, a .ckpt/.bin LoRA); a grey
# ControlNet image (a 400 "invalid generation parameters" from the real server) is expanded to
# RGB; "Automatic" is sent as the sampler's own A1111 schedule (karras for DPM++ 2M).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ai_common.inc"
start_server --protocol sdcpp
P=$T/p
base='s/, auth_env: KILN_GPU_AUTH//; /^  checkpoint:/d; s/, guidance_end: 0.8//'
ai_owls "$P" sdcpp "$base; s/^  steps: 20/  steps: 120/"
"$KILN" -C "$P" plan -q 2>"$T/err"
expect_eq "120 steps on sd-server refused" $? 2
expect_contains "steps refusal" "$T/err" "kiln.yaml:18:10: generate.steps 120: endpoint $U is sd-server, which runs at most 100 steps"
ai_owls "$P" sdcpp "$base; s/name: crown_v2,/name: crown_v2.ckpt,/"
"$KILN" -C "$P" plan -q 2>"$T/err"
expect_eq ".ckpt LoRA on sd-server refused" $? 2
expect_contains ".ckpt refusal" "$T/err" "lora 'crown_v2.ckpt' of trait 'Crown' (layer 'Hat'): endpoint $U is sd-server, which loads no .ckpt LoRA"
# a grey control image, DPM++ 2M with its automatic schedule
ai_owls "$P" sdcpp "$base; s/sampler: \"Euler a\"/sampler: \"DPM++ 2M\"/"
$PY -c "
from PIL import Image
Image.open('$P/controlnet/halo_canny.png').convert('L').save('$P/controlnet/halo_canny.png')"
"$KILN" -C "$P" plan -q || fail plan
"$KILN" -C "$P" render -q 2>"$T/err"
expect_eq "render with a grey control image" $? 0
head -3 "$T/err"
expect_eq "rendered" "$(sqlite3 "$P/.kiln/catalog.db" "select count(*) from items where status='rendered'")" 60
requests /sdcpp/v1/img_gen | $PY -c '
import sys, json, base64
n = cn = 0
for r in json.load(sys.stdin):
    j = r["json"]; n += 1
    sp = j["sample_params"]
    assert sp["sample_method"] == "dpm++2m" and sp["scheduler"] == "karras", sp
    if "glowing halo" in j["prompt"]:
        png = base64.b64decode(j["control_image"]); cn += 1
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and png[25] in (2, 6), png[25]
assert n == 59 and cn > 0, (n, cn)
print("ok")' >"$T/check" 2>&1
expect_contains "grey control sent as RGB, karras sent" "$T/check" ok
finish
