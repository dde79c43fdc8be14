#!/usr/bin/python3
"""Draw a small training project for tests/cli/train_prepare.sh (Pillow, seeded, original):
a 4-token compose collection (64x64 layers) and two datasets.

data/owls (PNG, captions in .txt files): 20 drawn images of different sizes and aspect ratios,
plus
  dup_of_03.png      the same bytes as owl_03.png (an exact duplicate)
  near_05.png        owl_05.png with a few pixels changed (a near duplicate)
  broken.png         a PNG cut after its header (does not decode)
  nocap_07.png       no caption file (a missing caption)
  grey_08.png        greyscale (mode L)
  alpha_09.png       RGBA
  cmyk_10.jpg        CMYK JPEG
data/more (JPEG, captions from a template over the file name): 6 images, one the same bytes
  as owl_11.png (a duplicate across datasets)
Usage: make_dataset.py PROJECT_DIR
"""
import os
import random
import shutil
import sys

from PIL import Image, ImageDraw

root = sys.argv[1]
rng = random.Random(17)
os.makedirs(root, exist_ok=True)


def drawn(w, h, seed):
    r = random.Random(seed)
    im = Image.new("RGB", (w, h), tuple(r.randrange(256) for _ in range(3)))
    d = ImageDraw.Draw(im)
    for _ in range(12):
        x0, y0 = r.randrange(w), r.randrange(h)
        x1, y1 = x0 + r.randrange(8, w // 2 + 9), y0 + r.randrange(8, h // 2 + 9)
        fill = tuple(r.randrange(256) for _ in range(3))
        if r.random() < 0.5:
            d.ellipse([x0, y0, x1, y1], fill=fill)
        else:
            d.rectangle([x0, y0, x1, y1], fill=fill)
    return im


# the collection: two layers of 64x64 PNGs
for layer, names in (("Body", ("plain", "gold")), ("Hat", ("cap", "crown"))):
    os.makedirs(f"{root}/layers/{layer}", exist_ok=True)
    for i, n in enumerate(names):
        im = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
        d = ImageDraw.Draw(im)
        if layer == "Body":
            d.rectangle([0, 0, 63, 63], fill=(40 + 150 * i, 90, 200 - 120 * i, 255))
            d.ellipse([12, 16, 52, 60], fill=(230, 200 - 100 * i, 60, 255))
        else:
            d.polygon([(20, 4 + 6 * i), (44, 4), (32, 18)], fill=(200, 30 * i, 90, 255))
        im.save(f"{root}/layers/{layer}/{n}.png")

owls = f"{root}/data/owls"
more = f"{root}/data/more"
os.makedirs(owls, exist_ok=True)
os.makedirs(more, exist_ok=True)
sizes = [(160, 120), (120, 160), (128, 128), (200, 100), (96, 192), (150, 150), (180, 120),
         (120, 90), (100, 140), (256, 128)]
for i in range(20):
    w, h = sizes[i % len(sizes)]
    im = drawn(w, h, 1000 + i)
    name = f"owl_{i:02d}"
    if i == 7:
        name = "nocap_07"
    if i == 8:
        im = im.convert("L")
        name = "grey_08"
    if i == 9:
        im = im.convert("RGBA")
        px = im.load()
        for y in range(h // 2):
            for x in range(w):
                r, g, b, _ = px[x, y]
                px[x, y] = (r, g, b, 0)
        name = "alpha_09"
    if i == 10:
        im.convert("CMYK").save(f"{owls}/cmyk_10.jpg", quality=92)
        name = "cmyk_10"
    else:
        im.save(f"{owls}/{name}.png")
    if i != 7:
        with open(f"{owls}/{name}.txt", "w") as f:
            f.write(f"pixel owl, drawing {i}\n")
shutil.copyfile(f"{owls}/owl_03.png", f"{owls}/dup_of_03.png")
with open(f"{owls}/dup_of_03.txt", "w") as f:
    f.write("a copy\n")
near = Image.open(f"{owls}/owl_05.png").convert("RGB")
px = near.load()
for k in range(6):
    x, y = (k * 17) % near.width, (k * 11) % near.height
    r, g, b = px[x, y]
    px[x, y] = (min(255, r + 3), g, b)
near.save(f"{owls}/near_05.png")
with open(f"{owls}/near_05.txt", "w") as f:
    f.write("pixel owl, nearly five\n")
with open(f"{owls}/owl_04.png", "rb") as f:
    head = f.read(60)
with open(f"{owls}/broken.png", "wb") as f:
    f.write(head)
with open(f"{owls}/broken.txt", "w") as f:
    f.write("never used\n")

for i in range(6):
    w, h = sizes[(i + 3) % len(sizes)]
    drawn(w, h, 2000 + i).save(f"{more}/sketch_{i}_blue-owl.jpg", quality=90)
shutil.copyfile(f"{owls}/owl_11.png", f"{more}/copied_11.png")

with open(f"{root}/kiln.yaml", "w") as f:
    f.write("""collection: {name: Train Owls, symbol: TOWL, size: 4, seed: 7}
image: {width: 64, height: 64, format: png}
layers:
  - name: Body
    traits:
      - {name: Plain, weight: 1, file: layers/Body/plain.png}
      - {name: Gold, weight: 1, file: layers/Body/gold.png}
  - name: Hat
    traits:
      - {name: Cap, weight: 1, file: layers/Hat/cap.png}
      - {name: Crown, weight: 1, file: layers/Hat/crown.png}
training:
  - name: owl_style
    base: sd_xl_base_1.0.safetensors
    trainer: kohya
    datasets:
      - {dir: data/owls, repeats: 10, class_tokens: "pixel owl", license: CC-BY-4.0,
         source: "studio sketches"}
      - {dir: data/more, repeats: 2, caption: {from: template,
         template: "{class_tokens}, {name}"}, class_tokens: "sketch"}
    resolution: 256
    buckets: {min: 128, max: 512, step: 64}
    network: {dim: 16, alpha: 8}
    steps: 1500
    seed: 7
    local: {command: ["accelerate", "launch", "sdxl_train_network.py"]}
  - name: owl_tokens
    base: sd_xl_base_1.0.safetensors
    trainer: ai-toolkit
    datasets:
      - {dir: "tokens:approved", class_tokens: "towl", license: "studio-owned",
         caption: {template: "{class_tokens}, {Body} owl, {Hat}"}}
    resolution: 128
    buckets: {min: 64, max: 256, step: 64}
    epochs: 3
    runpod: {endpoint_id: train-1, auth_env: RUNPOD_API_KEY}
""")
