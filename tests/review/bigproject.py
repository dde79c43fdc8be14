"""Write a layered kiln project of N tokens with small (32x32) images: 5 layers of 7 values
(16,807 trait sets), so that 10,000 distinct tokens plan and render in seconds.
usage: bigproject.py DIR N"""
import os
import sys

from PIL import Image

d, n = sys.argv[1], int(sys.argv[2])
os.makedirs(d, exist_ok=True)
COLORS = [(230, 80, 70), (70, 170, 90), (80, 120, 230), (230, 200, 60), (180, 90, 200),
          (60, 200, 210), (240, 140, 40)]
layers = []
for li in range(5):
    name = f"L{li + 1}"
    os.makedirs(f"{d}/layers/{name}", exist_ok=True)
    traits = []
    for vi, c in enumerate(COLORS):
        im = Image.new("RGBA", (32, 32), (0, 0, 0, 0) if li else (20 + 20 * vi, 24, 30, 255))
        if li:
            x0 = (li - 1) % 2 * 16
            y0 = (li - 1) // 2 * 16
            for x in range(x0 + 2, x0 + 14):
                for y in range(y0 + 2, y0 + 14):
                    im.putpixel((x, y), c + (255,))
        im.save(f"{d}/layers/{name}/v{vi + 1}.png")
        traits.append(f"      - {{name: V{vi + 1}, weight: 1, file: layers/{name}/v{vi + 1}.png}}")
    layers.append(f"  - name: {name}\n    traits:\n" + "\n".join(traits))
with open(f"{d}/kiln.yaml", "w") as f:
    f.write(f"""collection: {{name: Big Grid, symbol: GRID, size: {n}, seed: 7,
             description: "A large collection to scroll through."}}
image: {{width: 32, height: 32, format: png}}
layers:
{chr(10).join(layers)}
uniqueness: {{min_distance: 1}}
metadata: {{name: "Grid #{{id}}", start_id: 1}}
""")
