# AI engine comfyui with an SDXL-style workflow (issue 12): the positive conditioning is a
# ConditioningCombine of a CLIPTextEncodeSDXL (text_g/text_l) and a style CLIPTextEncode. The
# test server, like ComfyUI, ignores inputs a node class does not declare, so the prompt reaches
# the model only when kiln follows the links to every text input. A workflow whose latent has
# no width/height node is refused before anything is sent, naming the node and its line.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ai_common.inc"
start_server --protocol comfyui
P=$T/p
ai_owls "$P" comfyui 's/, auth_env: KILN_GPU_AUTH//'
cat >"$P/owl_workflow.json" <<'JSON'
{
  "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sd_xl_base_1.0.safetensors"}},
  "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 1024, "height": 1024, "batch_size": 1}},
  "6": {"class_type": "CLIPTextEncodeSDXL", "inputs": {"clip": ["4", 1], "width": 1024, "height": 1024,
        "crop_w": 0, "crop_h": 0, "target_width": 1024, "target_height": 1024,
        "text_g": "CLIP_G", "text_l": "CLIP_L"}},
  "10": {"class_type": "CLIPTextEncode", "inputs": {"text": "style", "clip": ["4", 1]}},
  "11": {"class_type": "ConditioningCombine", "inputs": {"conditioning_1": ["6", 0], "conditioning_2": ["10", 0]}},
  "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "neg", "clip": ["4", 1]}},
  "3": {"class_type": "KSampler", "inputs": {"seed": 0, "steps": 20, "cfg": 7.0, "sampler_name": "euler",
        "scheduler": "simple", "denoise": 1.0, "model": ["4", 0], "positive": ["11", 0],
        "negative": ["7", 0], "latent_image": ["5", 0]}},
  "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
  "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "owls/owl", "images": ["8", 0]}}
}
JSON
"$KILN" -C "$P" plan -q || fail plan
"$KILN" -C "$P" render -q 2>"$T/err"
expect_eq "render the SDXL workflow" $? 0
head -3 "$T/err"
curl -s "$U/__test__/jobs" | $PY -c '
import sys, json
n = 0
for job in json.load(sys.stdin):
    if job["status"] != "completed":
        continue
    p = job["outputs"][0]["params"]; n += 1
    # every text encoder behind the positive got the prompt: text_g and text_l, and the style
    assert p["prompt"].startswith("pixel art owl"), p["prompt"]
    g, s = p["prompt"].split(" AND ")
    assert g == s and " | " not in g, p["prompt"]
    assert p["negative_prompt"].startswith("blurry"), p["negative_prompt"]
    assert (p["width"], p["height"]) == (512, 512), (p["width"], p["height"])
    # "Euler a" with "Automatic": the model schedule (A1111 Uniform = ComfyUI normal)
    assert p["extra"]["scheduler"] == "normal", p["extra"]
assert n == 59, n
print("ok")' >"$T/check" 2>&1
expect_contains "prompt, negative and size reached the model" "$T/check" ok
# a latent from a node without width and height: refused before any request
curl -s -XPOST "$U/__test__/reset" >/dev/null
sed -i 's/"5": {"class_type": "EmptyLatentImage", "inputs": {"width": 1024, "height": 1024, "batch_size": 1}}/"5": {"class_type": "VAEEncode", "inputs": {"pixels": ["12", 0], "vae": ["4", 2]}}/' "$P/owl_workflow.json"
"$KILN" -C "$P" render --force -q 2>"$T/err"
expect_eq "workflow without a size node refused" $? 2
expect_contains "names the node and its line" "$T/err" "owl_workflow.json:3: the KSampler's latent_image comes from node 5 (VAEEncode), which has no width and height"
expect_eq "nothing sent" "$(requests /prompt | $PY -c 'import sys, json; print(len(json.load(sys.stdin)))')" 0
finish
