#!/usr/bin/python3
"""Check kiln's kohya dataset.toml the way kohya reads it: parsed by python3-toml (toml 0.10.2,
what sd-scripts pins), then every key and type against the schemas of kohya-ss/sd-scripts
library/config_util.py at 48d368fa557731ad0488c07304dfeba8c07910eb (ConfigSanitizer as
train_network.py builds it: ConfigSanitizer(True, True, args.masked_loss=False, True): DreamBooth
subsets, fine-tuning subsets, no ControlNet, dropout keys). A key kohya's validator would
reject, or a value of another type, fails. The same table is in docs/training.md.

Then the files: every subset's image_dir exists under the training folder and holds exactly
the manifest's images of that dataset with their captions; caption_extension is explicit.
Usage: check_toml.py TRAINING_DIR
"""
import json
import os
import sys

import toml

TWODIM_FLOAT = "[float, float]"
INT_OR_TWODIM = "int | [int, int]"
NUM = "float | int"
SUBSET_ASCENDABLE = {
    "color_aug": bool, "face_crop_aug_range": TWODIM_FLOAT, "flip_aug": bool,
    "num_repeats": int, "random_crop": bool, "shuffle_caption": bool, "keep_tokens": int,
    "keep_tokens_separator": str, "secondary_separator": str, "caption_separator": str,
    "enable_wildcard": bool, "token_warmup_min": int, "token_warmup_step": NUM,
    "caption_prefix": str, "caption_suffix": str, "custom_attributes": dict,
    "resize_interpolation": str,
}
DO_SUBSET_ASCENDABLE = {
    "caption_dropout_every_n_epochs": int, "caption_dropout_rate": NUM,
    "caption_tag_dropout_rate": NUM,
}
DB_SUBSET_ASCENDABLE = {"caption_extension": str, "class_tokens": str, "cache_info": bool}
DB_SUBSET_DISTINCT = {"image_dir": str, "is_reg": bool, "alpha_mask": bool}  # image_dir required
DATASET_ASCENDABLE = {
    "batch_size": int, "bucket_no_upscale": bool, "bucket_reso_steps": int,
    "enable_bucket": bool, "max_bucket_reso": int, "min_bucket_reso": int,
    "validation_seed": int, "validation_split": float, "resolution": INT_OR_TWODIM,
    "network_multiplier": float, "resize_interpolation": str,
}
GENERAL = {**DATASET_ASCENDABLE, **SUBSET_ASCENDABLE, **DB_SUBSET_ASCENDABLE,
           **DO_SUBSET_ASCENDABLE}
DATASET = {**GENERAL, "subsets": list}
SUBSET = {**SUBSET_ASCENDABLE, **DB_SUBSET_DISTINCT, **DB_SUBSET_ASCENDABLE,
          **DO_SUBSET_ASCENDABLE}

problems = []


def type_ok(v, t):
    if t == TWODIM_FLOAT:
        return isinstance(v, list) and len(v) == 2 and all(type(x) is float for x in v)
    if t == INT_OR_TWODIM:
        return type(v) is int or (isinstance(v, list) and len(v) == 2 and
                                  all(type(x) is int for x in v))
    if t == NUM:
        return type(v) in (int, float)
    return type(v) is t  # bool is not an int here: kiln writes what the key means


def check(table, schema, where):
    if not isinstance(table, dict):
        problems.append(f"{where} is not a table")
        return
    for k, v in table.items():
        if k not in schema:
            problems.append(f"{where}: key {k!r} is not one kohya accepts")
        elif not type_ok(v, schema[k]):
            problems.append(f"{where}.{k} = {v!r}: kohya wants {schema[k]}")


tdir = sys.argv[1]
cfg = toml.load(os.path.join(tdir, "dataset.toml"))
man = json.load(open(os.path.join(tdir, "manifest.json")))
for k in cfg:
    if k not in ("general", "datasets"):
        problems.append(f"top-level key {k!r} is not one kohya accepts")
check(cfg.get("general", {}), GENERAL, "general")
subsets = []
for i, d in enumerate(cfg.get("datasets", [])):
    check(d, DATASET, f"datasets[{i}]")
    for j, s in enumerate(d.get("subsets", [])):
        check(s, SUBSET, f"datasets[{i}].subsets[{j}]")
        if "image_dir" not in s:
            problems.append(f"datasets[{i}].subsets[{j}] has no image_dir (required)")
        if "caption_extension" not in s:
            problems.append(f"datasets[{i}].subsets[{j}]: caption_extension not explicit")
        subsets.append(s)
g = cfg.get("general", {})
if g.get("resolution") != man["resolution"]:
    problems.append(f"resolution {g.get('resolution')} is not the manifest's")
for key, mk in (("min_bucket_reso", "min"), ("max_bucket_reso", "max"),
                ("bucket_reso_steps", "step"), ("enable_bucket", "enable")):
    if g.get(key) != man["buckets"][mk]:
        problems.append(f"{key} {g.get(key)} is not the manifest's {man['buckets'][mk]}")
used = [d for d in man["datasets"] if d["images"]]
if len(subsets) != len(used):
    problems.append(f"{len(subsets)} subsets for {len(used)} datasets with images")
for s, d in zip(subsets, used):
    path = os.path.join(tdir, s["image_dir"])
    if not os.path.isdir(path):
        problems.append(f"image_dir {s['image_dir']} is not a folder of the training")
        continue
    if s["num_repeats"] != d["repeats"] or s["caption_extension"] != d["caption_extension"]:
        problems.append(f"subset {s['image_dir']}: repeats/extension not the manifest's")
    if s.get("class_tokens") != d["class_tokens"]:
        problems.append(f"subset {s['image_dir']}: class_tokens not the manifest's")
    di = man["datasets"].index(d)
    want = sorted(os.path.basename(im["file"]) for im in man["images"] if im["dataset"] == di)
    have = sorted(f for f in os.listdir(path)
                  if os.path.splitext(f)[1].lower() in (".png", ".jpg", ".jpeg", ".webp"))
    if want != have:
        problems.append(f"{s['image_dir']} holds {have}, the manifest {want}")
    for f in have:
        cap = os.path.join(path, os.path.splitext(f)[0] + s["caption_extension"])
        if not os.path.exists(cap):
            problems.append(f"{f} has no caption file")
if problems:
    print("\n".join(problems))
    sys.exit(1)
print("dataset.toml: %d subsets, every key and type one kohya accepts" % len(subsets))
