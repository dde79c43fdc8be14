#!/usr/bin/python3
"""test_standin: the kohya stand-in (kohya_standin.py) against kiln's own reader.

Its output must be what lib/train's bounds-checked safetensors reader accepts as a kohya LoRA
(`kiln models add`, which refuses a file whose sshs_model_hash is not the SHA-256 of the bytes
after the header), with the metadata train_network.py writes (ss_num_train_images = images x
repeats, ss_dataset_dirs, ss_tag_frequency from the captions and class tokens), and it must
refuse what kohya refuses (an unknown TOML key, a subset without image_dir, an unknown flag)
with kohya's words. Usage: test_standin.py KILN
"""
import hashlib
import json
import os
import struct
import subprocess
import sys
import tempfile
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
STANDIN = os.path.join(HERE, "kohya_standin.py")
KILN = sys.argv[1]


def png(path, shade):
    raw = b"".join(b"\x00" + bytes((shade, 80, 160)) * 4 for _ in range(4))

    def ch(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    open(path, "wb").write(b"\x89PNG\r\n\x1a\n" + ch(b"IHDR", struct.pack(
        ">IIBBBBB", 4, 4, 8, 2, 0, 0, 0)) + ch(b"IDAT", zlib.compress(raw)) + ch(b"IEND", b""))


def run(d, toml, *extra):
    open(os.path.join(d, "ds.toml"), "w").write(toml)
    env = dict(os.environ, KOHYA_STANDIN_STEP_SECONDS="0")
    return subprocess.run([sys.executable, STANDIN, "sdxl_train_network.py",
                           "--pretrained_model_name_or_path", "base.safetensors",
                           "--dataset_config", "ds.toml", "--output_dir", "out",
                           "--output_name", "lora", "--network_module", "networks.lora",
                           "--network_dim", "4", "--network_alpha", "2",
                           "--max_train_steps", "12", "--seed", "5"] + list(extra), cwd=d,
                          env=env, capture_output=True, text=True)


GOOD = """[general]
caption_extension = ".txt"
[[datasets]]
resolution = 512
[[datasets.subsets]]
image_dir = "a"
num_repeats = 3
class_tokens = "pixel owl"
[[datasets.subsets]]
image_dir = "b"
num_repeats = 2
"""


def main():
    fails = []
    with tempfile.TemporaryDirectory() as d:
        for sub, n in (("a", 3), ("b", 2)):
            os.makedirs(os.path.join(d, sub))
            for i in range(n):
                png(os.path.join(d, sub, "i%d.png" % i), 40 * i + (sub == "b") * 7)
        open(os.path.join(d, "a", "i0.txt"), "w").write("owl, red hat\nignored line\n")
        r = run(d, GOOD)
        if r.returncode:
            fails.append("good config: %s" % r.stderr[-500:])
        else:
            if "steps: 100%" not in r.stderr or "| 12/12 [" not in r.stderr or \
                    "avr_loss=" not in r.stderr:
                fails.append("no tqdm progress: %r" % r.stderr[-300:])
            if "epoch 1/1" not in r.stdout:
                fails.append("no epoch line: %r" % r.stdout[-300:])
            f = os.path.join(d, "out", "lora.safetensors")
            k = subprocess.run([KILN, "-C", d, "models", "add", f, "--json"],
                               capture_output=True, text=True)
            if k.returncode:
                # models add needs a project: make one
                open(os.path.join(d, "kiln.yaml"), "w").write(
                    "collection: {name: S, symbol: S, size: 1, seed: 1}\n"
                    "image: {width: 4, height: 4, format: png}\nlayers:\n  - name: L\n"
                    "    traits:\n      - {name: T, weight: 1, file: a/i0.png}\n")
                k = subprocess.run([KILN, "-C", d, "models", "add", f, "--json"],
                                   capture_output=True, text=True)
            if k.returncode:
                fails.append("kiln refused the stand-in's file: %s" % k.stderr)
            else:
                rec = json.loads(k.stdout)
                b = open(f, "rb").read()
                n = struct.unpack("<Q", b[:8])[0]
                md = rec["safetensors"]["metadata"]
                want = {"ss_num_train_images": "13", "ss_steps": "12", "ss_seed": "5",
                        "ss_base_model_version": "sdxl_base_v1-0",
                        "ss_sd_model_name": "base.safetensors",
                        "ss_network_module": "networks.lora", "ss_network_dim": "4",
                        "ss_output_name": "lora"}
                for key, v in want.items():
                    if md.get(key) != v:
                        fails.append("%s: %r, want %r" % (key, md.get(key), v))
                if json.loads(md["ss_dataset_dirs"]) != {
                        "a": {"n_repeats": 3, "img_count": 3},
                        "b": {"n_repeats": 2, "img_count": 2}}:
                    fails.append("ss_dataset_dirs %s" % md["ss_dataset_dirs"])
                # a caption file's first line, class tokens when none, nothing for b
                if json.loads(md["ss_tag_frequency"]) != {
                        "a": {"owl": 1, "red hat": 1, "pixel owl": 2}, "b": {}}:
                    fails.append("ss_tag_frequency %s" % md["ss_tag_frequency"])
                if md["sshs_model_hash"] != hashlib.sha256(b[8 + n:]).hexdigest() or \
                        rec["a1111"]["addnet_hash"] != md["sshs_model_hash"]:
                    fails.append("sshs_model_hash is not kiln's LoRA hash")
                if rec["kind"] != "lora" or rec["safetensors"]["tensors"] != 6:
                    fails.append("not read as a LoRA: %s" % rec["kind"])
        # what kohya refuses
        r = run(d, GOOD.replace('num_repeats = 3', 'num_repeats = 3\nrepeats = 3'))
        if r.returncode == 0 or "Invalid user config" not in r.stderr or \
                "extra keys not allowed @ data['datasets'][0]['subsets'][0]['repeats']" \
                not in r.stderr:
            fails.append("unknown key not refused as kohya does: %s" % r.stderr[-300:])
        r = run(d, GOOD.replace('image_dir = "b"\n', ''))
        if r.returncode == 0 or "required key not provided @ data['datasets'][0]" \
                "['subsets'][1]['image_dir']" not in r.stderr:
            fails.append("missing image_dir not refused: %s" % r.stderr[-300:])
        r = run(d, GOOD, "--no_such_flag")
        if r.returncode != 2 or "unrecognized arguments: --no_such_flag" not in r.stderr:
            fails.append("unknown flag not refused as argparse does: %s" % r.stderr[-300:])
        r = run(d, GOOD.replace('"a"', '"missing"').replace('"b"', '"gone"'))
        if "not directory: missing" not in r.stderr or "No data found" not in r.stdout:
            fails.append("a folder that is not there: %s %s" % (r.stdout[-200:],
                                                                  r.stderr[-200:]))
    for f in fails:
        print("FAIL:", f)
    print("%d failed" % len(fails))
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
