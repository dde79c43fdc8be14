#!/usr/bin/python3
"""fixture_prepared: what `kiln train prepare NAME` leaves in PROJECT/.kiln/train/NAME/, for
the tests of `kiln train run` that must not depend on prepare: manifest.json (the fields
lib/train/manifest.c reads), images/N/ with captions, dataset.toml and command.json.

  fixture_prepared.py PROJECT NAME BASE ARCH SEED STEPS DIR:REPEATS:IMAGES[:CLASS] ...
"""
import hashlib
import json
import os
import struct
import sys
import zlib


def png(path, rgb):
    raw = b"".join(b"\x00" + bytes(rgb) * 8 for _ in range(8))

    def ch(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    data = b"\x89PNG\r\n\x1a\n" + ch(b"IHDR", struct.pack(">IIBBBBB", 8, 8, 8, 2, 0, 0, 0)) + \
        ch(b"IDAT", zlib.compress(raw)) + ch(b"IEND", b"")
    open(path, "wb").write(data)
    return hashlib.sha256(data).hexdigest()


def main():
    proj, name, base, arch, seed, steps = sys.argv[1:7]
    top = os.path.join(".kiln", "train", name)
    os.makedirs(os.path.join(proj, top), exist_ok=True)
    datasets, images, toml = [], [], ['[general]', 'enable_bucket = true', '']
    for n, spec in enumerate(sys.argv[7:]):
        parts = spec.split(":")
        d, repeats, count = parts[0], int(parts[1]), int(parts[2])
        cls = parts[3] if len(parts) > 3 else None
        idir = os.path.join(top, "images", str(n))
        os.makedirs(os.path.join(proj, idir), exist_ok=True)
        for i in range(count):
            f = os.path.join(idir, "img%03d.png" % i)
            sha = png(os.path.join(proj, f), (n * 40 % 256, i * 30 % 256, 90))
            cap = "pixel owl, number %d" % i if i % 2 == 0 else ""
            if cap:
                open(os.path.join(proj, idir, "img%03d.txt" % i), "w").write(cap + "\n")
            images.append({"source": "%s/img%03d.png" % (d, i), "file": f, "caption": cap,
                           "caption_from": "file" if cap else "missing",
                           "sha256_source": sha, "sha256": sha, "phash": None,
                           "source_size": [8, 8], "crop": [0, 0, 8, 8], "bucket": [8, 8],
                           "dataset": n, "token": None})
        datasets.append({"dir": d, "image_dir": idir, "class_tokens": cls,
                         "license": "CC-BY-4.0", "source": None, "caption_extension": ".txt",
                         "repeats": repeats, "images": count})
        toml += ['[[datasets]]', 'resolution = 1024', 'batch_size = 1', '',
                 '[[datasets.subsets]]', 'image_dir = "%s"' % idir,
                 'caption_extension = ".txt"', 'num_repeats = %d' % repeats]
        if cls:
            toml.append('class_tokens = "%s"' % cls)
        toml.append('')
    m = {"version": 1, "name": name, "trainer": "kohya", "arch": arch, "base": base,
         "resolution": [1024, 1024],
         "buckets": {"enable": True, "min": 256, "max": 2048, "step": 64},
         "network": {"dim": 4, "alpha": 2.0}, "unet_lr": 0.0001, "text_encoder_lr": 5e-05,
         "steps": int(steps), "epochs": None, "seed": int(seed), "batch_size": 1,
         "datasets": datasets, "images": images}
    text = json.dumps(m, indent=2, sort_keys=True) + "\n"
    open(os.path.join(proj, top, "manifest.json"), "w").write(text)
    open(os.path.join(proj, top, "dataset.toml"), "w").write("\n".join(toml))
    args = ["--pretrained_model_name_or_path", base, "--dataset_config",
            os.path.join(top, "dataset.toml"), "--output_dir", os.path.join(top, "output"),
            "--output_name", name, "--save_model_as", "safetensors", "--network_module",
            "networks.lora", "--network_dim", "4", "--network_alpha", "2",
            "--max_train_steps", steps, "--seed", seed, "--resolution", "1024,1024"]
    json.dump({"args": args, "manifest_sha256": hashlib.sha256(text.encode()).hexdigest()},
              open(os.path.join(proj, top, "command.json"), "w"), indent=1)


if __name__ == "__main__":
    main()
