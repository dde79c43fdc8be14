#!/usr/bin/python3
"""kohya_standin: a stand-in for kohya-ss/sd-scripts' LoRA trainer, for kiln's tests.

It is NOT kohya and trains nothing. It takes kohya's command line, reads the dataset the way
kohya does, prints kohya-style progress and writes a small but valid .safetensors LoRA whose
__metadata__ holds what kohya writes, so that `kiln train run` can be tested end to end
without a GPU. What it follows (read, not copied), kohya-ss/sd-scripts at commit
48d368fa557731ad0488c07304dfeba8c07910eb (2026-02-16):

  train_network.py        the metadata dict (ss_* keys, ss_dataset_dirs / ss_tag_frequency /
                          ss_datasets JSON, ss_steps and ss_training_finished_at set by
                          save_model), the "running training" lines, tqdm(desc="steps") with
                          set_postfix(avr_loss=...), "\\nepoch N/M\\n", "saving checkpoint: F",
                          "No data found. Please verify arguments ..."
  library/config_util.py  load_user_config (toml.load; "file not found"), ConfigSanitizer's
                          schema for DreamBooth-style datasets ([general], [[datasets]],
                          [[datasets.subsets]], image_dir required), "Invalid user config"
                          and voluptuous' messages ("extra keys not allowed @ data[...]")
  library/train_util.py   glob_images (IMAGE_EXTENSIONS, sorted), read_caption (base name +
                          caption_extension, first line), class_tokens when no caption,
                          "not directory: DIR", set_tag_frequency (tags split at ","),
                          num_train_images = sum(num_repeats * images), model_hash /
                          precalculate_safetensors_hashes (sshs_model_hash: SHA-256 of the
                          bytes after the header; sshs_legacy_hash: 8 hex of the 64 KiB at
                          1 MiB of a file holding only the ss_* metadata)

Usage, as `accelerate launch` runs kohya's scripts:
  kohya_standin.py [sdxl_]train_network.py --pretrained_model_name_or_path M
      --dataset_config dataset.toml --output_dir D --output_name N --network_module
      networks.lora --network_dim 16 --network_alpha 8 --max_train_steps 1500 --seed 42 ...
The first argument names the script imitated (sdxl_train_network.py: an SDXL LoRA,
ss_base_model_version sdxl_base_v1-0; train_network.py: sd_v1, or sd_v2 with --v2).

Timing: each step sleeps $KOHYA_STANDIN_STEP_SECONDS (default 0.02). Faults for tests:
$KOHYA_STANDIN_FAIL_AT=N exits 1 at step N with a CUDA-like error.
Reads TOML with python3-toml (toml 0.10.2, what kohya pins). Standard library otherwise.
"""

import argparse
import hashlib
import json
import math
import os
import random
import struct
import sys
import time

import toml

IMAGE_EXTENSIONS = [".png", ".jpg", ".jpeg", ".webp", ".bmp", ".PNG", ".JPG", ".JPEG", ".WEBP",
                    ".BMP"]

# ConfigSanitizer's DreamBooth schema (config_util.py): key -> accepted types
SUBSET = {"color_aug": bool, "face_crop_aug_range": list, "flip_aug": bool, "num_repeats": int,
          "random_crop": bool, "shuffle_caption": bool, "keep_tokens": int,
          "keep_tokens_separator": str, "secondary_separator": str, "caption_separator": str,
          "enable_wildcard": bool, "token_warmup_min": int, "token_warmup_step": (float, int),
          "caption_prefix": str, "caption_suffix": str, "custom_attributes": dict,
          "resize_interpolation": str}
DROPOUT = {"caption_dropout_every_n_epochs": int, "caption_dropout_rate": (float, int),
           "caption_tag_dropout_rate": (float, int)}
DB_ASC = {"caption_extension": str, "class_tokens": str, "cache_info": bool}
DB_DISTINCT = {"image_dir": str, "is_reg": bool, "alpha_mask": bool}
DATASET = {"batch_size": int, "bucket_no_upscale": bool, "bucket_reso_steps": int,
           "enable_bucket": bool, "max_bucket_reso": int, "min_bucket_reso": int,
           "validation_seed": int, "validation_split": float, "resolution": (int, list),
           "network_multiplier": float, "resize_interpolation": str}


def invalid(msgs):
    # config_util.sanitize_user_config logs this, then voluptuous' MultipleInvalid propagates
    print("ERROR    Invalid user config / ユーザ設定の形式が正しくないようです", file=sys.stderr)
    print("voluptuous.error.MultipleInvalid: %s" % msgs[0], file=sys.stderr)
    sys.exit(1)


def check(obj, schema, where, errs, required=()):
    if not isinstance(obj, dict):
        errs.append("expected a dictionary @ data%s" % where)
        return
    for k, v in obj.items():
        w = "%s['%s']" % (where, k)
        if k == "subsets" and "subsets" in schema:
            if not isinstance(v, list):
                errs.append("expected a list @ data%s" % w)
                continue
            for i, s in enumerate(v):
                check(s, schema["subsets"], "%s[%d]" % (w, i), errs, ("image_dir",))
            continue
        if k not in schema:
            errs.append("extra keys not allowed @ data%s" % w)
            continue
        t = schema[k]
        ok = isinstance(v, t) and not (t in (int, float) and isinstance(v, bool))
        if t is int and isinstance(v, bool):
            ok = False
        if not ok:
            tn = t.__name__ if isinstance(t, type) else " or ".join(x.__name__ for x in t)
            errs.append("expected %s for dictionary value @ data%s" % (tn, w))
    for r in required:
        if r not in obj:
            errs.append("required key not provided @ data%s['%s']" % (where, r))


def load_config(path):
    if not os.path.isfile(path):
        raise ValueError("file not found / ファイルが見つかりません: %s" % path)
    try:
        with open(path, "r", encoding="utf-8") as f:
            cfg = toml.load(f)
    except Exception:
        print("ERROR    Error on parsing TOML config file. Please check the format. / TOML "
              "形式の設定ファイルの読み込みに失敗しました。文法が正しいか確認してください。: %s"
              % path, file=sys.stderr)
        raise
    sub = dict(SUBSET, **DB_DISTINCT, **DB_ASC, **DROPOUT)
    ds = dict(DATASET, **SUBSET, **DB_ASC, **DROPOUT, subsets=sub)
    gen = dict(DATASET, **SUBSET, **DB_ASC, **DROPOUT)
    errs = []
    for k, v in cfg.items():
        if k == "general":
            check(v, gen, "['general']", errs)
        elif k == "datasets":
            if not isinstance(v, list):
                errs.append("expected a list @ data['datasets']")
                continue
            for i, d in enumerate(v):
                check(d, ds, "['datasets'][%d]" % i, errs)
        else:
            errs.append("extra keys not allowed @ data['%s']" % k)
    if errs:
        invalid(errs)
    return cfg


def glob_images(d):
    out = set()
    for name in os.listdir(d):
        p = os.path.join(d, name)
        if os.path.splitext(name)[1] in IMAGE_EXTENSIONS and not name.startswith("."):
            out.add(p)
    return sorted(out)


def read_caption(img, ext):
    base = os.path.splitext(img)[0]
    tokens = base.split("_")
    fd = "_".join(tokens[:-4]) if len(tokens) >= 5 else base
    for cp in (base + ext, fd + ext):
        if os.path.isfile(cp):
            with open(cp, "rt", encoding="utf-8") as f:
                lines = f.readlines()
            if not lines:
                raise AssertionError("caption file is empty / キャプションファイルが空です: %s" % cp)
            return lines[0].strip()
    return None


def subsets_of(cfg):
    """The DreamBooth subsets with their parameters ascended from dataset and general."""
    gen = cfg.get("general", {})
    for di, d in enumerate(cfg.get("datasets", [])):
        for s in d.get("subsets", []):
            p = {}
            for src in (gen, d, s):
                p.update({k: v for k, v in src.items() if k != "subsets"})
            p.setdefault("num_repeats", 1)
            p.setdefault("caption_extension", ".caption")
            p.setdefault("batch_size", 1)
            yield di, p


def log(msg):
    print("INFO     %s" % msg, file=sys.stderr, flush=True)


def fmt_time(s):
    s = int(s)
    return "%02d:%02d" % (s // 60, s % 60) if s < 3600 else \
        "%d:%02d:%02d" % (s // 3600, s % 3600 // 60, s % 60)


def bar(n, total, t0, loss):
    """One tqdm line as tqdm(desc="steps") prints it with set_postfix(avr_loss=...)."""
    frac = n / total if total else 1
    width = 10
    full = int(frac * width)
    part = int((frac * width - full) * 8)
    b = "█" * full + ("" if full == width else (" ▏▎▍▌▋▊▉"[part] if part else " ")) \
        + " " * max(0, width - full - 1)
    el = time.time() - t0
    rate = n / el if el > 0 else 0
    rem = (total - n) / rate if rate > 0 else 0
    rs = ("%5.2fit/s" % rate) if rate >= 1 else ("%5.2fs/it" % (1 / rate) if rate else "?it/s")
    return "steps: %3d%%|%s| %d/%d [%s<%s, %s, avr_loss=%.4g]" % (
        int(frac * 100), b, n, total, fmt_time(el), fmt_time(rem), rs, loss)


def safetensors_bytes(tensors, metadata):
    """tensors: name -> (dtype, shape, bytes). Header padded with spaces to 8 bytes."""
    header = {"__metadata__": metadata} if metadata is not None else {}
    data = b""
    for name in sorted(tensors):
        dt, shape, raw = tensors[name]
        header[name] = {"dtype": dt, "shape": shape,
                        "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data


def main():
    argv = sys.argv[1:]
    script = "train_network.py"
    if argv and argv[0].endswith("train_network.py"):
        script = os.path.basename(argv.pop(0))
    ap = argparse.ArgumentParser(prog=script)
    s, i, f, b = str, int, float, "store_true"
    for name, t in (("pretrained_model_name_or_path", s), ("dataset_config", s),
                    ("train_data_dir", s), ("reg_data_dir", s), ("output_dir", s),
                    ("output_name", s), ("save_model_as", s), ("network_module", s),
                    ("network_dim", i), ("network_alpha", f), ("network_dropout", f),
                    ("network_weights", s), ("max_train_steps", i), ("max_train_epochs", i),
                    ("seed", i), ("learning_rate", f), ("unet_lr", f), ("text_encoder_lr", f),
                    ("resolution", s), ("train_batch_size", i), ("mixed_precision", s),
                    ("save_precision", s), ("optimizer_type", s), ("lr_scheduler", s),
                    ("lr_warmup_steps", i), ("clip_skip", i), ("max_token_length", i),
                    ("gradient_accumulation_steps", i), ("save_every_n_epochs", i),
                    ("save_every_n_steps", i), ("caption_extension", s), ("vae", s),
                    ("noise_offset", f), ("min_snr_gamma", f), ("training_comment", s),
                    ("logging_dir", s), ("log_prefix", s), ("sample_prompts", s),
                    ("max_data_loader_n_workers", i), ("keep_tokens", i),
                    ("prior_loss_weight", f), ("max_grad_norm", f), ("loss_type", s)):
        ap.add_argument("--" + name, type=t)
    ap.add_argument("--network_args", nargs="*")
    ap.add_argument("--optimizer_args", nargs="*")
    for name in ("v2", "v_parameterization", "cache_latents", "cache_latents_to_disk",
                 "gradient_checkpointing", "xformers", "sdpa", "network_train_unet_only",
                 "network_train_text_encoder_only", "no_metadata", "full_fp16", "full_bf16",
                 "shuffle_caption", "color_aug", "flip_aug", "enable_bucket", "lowram",
                 "persistent_data_loader_workers", "cache_text_encoder_outputs",
                 "no_half_vae", "fp8_base"):
        ap.add_argument("--" + name, action=b)
    a = ap.parse_args(argv)   # argparse refuses what kohya's parser lacks, as kohya does
    sdxl = script.startswith("sdxl")
    if sdxl and a.v2:
        ap.error("v2 cannot be used with SDXL")   # sdxl_train_util.verify_sdxl_training_args
    if not a.pretrained_model_name_or_path:
        ap.error("the following arguments are required: --pretrained_model_name_or_path")
    if not a.dataset_config:
        print("ERROR    this stand-in takes a --dataset_config only (kiln always writes one)",
              file=sys.stderr)
        return 1
    if not a.output_dir:
        ap.error("--output_dir is required")
    if not a.network_module:
        ap.error("--network_module is required")
    cfg = load_config(a.dataset_config)
    log("Loading dataset config from %s" % a.dataset_config)
    images, dirs, tag_frequency, ds_meta = 0, {}, {}, []
    batches = 0
    for di, p in subsets_of(cfg):
        d = p["image_dir"]
        if not os.path.isdir(d):
            print("WARNING  not directory: %s" % d, file=sys.stderr)
            imgs = []
        else:
            imgs = glob_images(d)
        log("found directory %s contains %d image files" % (d, len(imgs)))
        caps = []
        missing = 0
        for img in imgs:
            c = read_caption(img, p["caption_extension"])
            if c is None:
                missing += 1
                c = p.get("class_tokens", "")
            caps.append(c)
        if missing:
            print("WARNING  No caption file found for %d images. Training will continue "
                  "without captions for these images. If class token exists, it will be used."
                  % missing, file=sys.stderr)
        base = os.path.basename(d.rstrip("/"))
        freq = tag_frequency.setdefault(base, {})
        for c in caps:
            for t in c.split(","):
                t = t.strip()
                if t:
                    freq[t] = freq.get(t, 0) + 1
        if imgs and not p.get("is_reg"):
            k, n = base, 2
            while k in dirs:
                k = "%s (%d)" % (base, n)
                n += 1
            dirs[k] = {"n_repeats": p["num_repeats"], "img_count": len(imgs)}
        n = p["num_repeats"] * len(imgs)
        images += n
        batches += math.ceil(n / (a.train_batch_size or p["batch_size"])) if n else 0
        ds_meta.append({"dataset": di, "image_dir": base, "img_count": len(imgs),
                        "num_repeats": p["num_repeats"], "class_tokens": p.get("class_tokens")})
    if images == 0:
        print("No data found. Please verify arguments (train_data_dir must be the parent of "
              "folders with images) / 画像がありません。引数指定を確認してください（train_data_dirには画像が"
              "あるフォルダではなく、画像があるフォルダの親フォルダを指定する必要があります）", flush=True)
        return 0
    if a.max_train_epochs:
        a.max_train_steps = a.max_train_epochs * batches
    steps = a.max_train_steps or 1600     # kohya's default --max_train_steps
    epochs = math.ceil(steps / batches)
    seed = a.seed if a.seed is not None else random.randint(0, 2**32)
    started = time.time()
    print("running training / 学習開始")
    print("  num train images * repeats / 学習画像の数×繰り返し回数: %d" % images)
    print("  num reg images / 正則化画像の数: 0")
    print("  num batches per epoch / 1epochのバッチ数: %d" % batches)
    print("  num epochs / epoch数: %d" % epochs)
    print("  total optimization steps / 学習ステップ数: %d" % steps, flush=True)
    pause = float(os.environ.get("KOHYA_STANDIN_STEP_SECONDS", "0.02"))
    fail_at = int(os.environ.get("KOHYA_STANDIN_FAIL_AT", "0"))
    rng = random.Random(seed)
    loss, step, t0, last = 0.15, 0, time.time(), 0.0
    for ep in range(epochs):
        print("\nepoch %d/%d\n" % (ep + 1, epochs), flush=True)
        for _ in range(batches):
            if step >= steps:
                break
            time.sleep(pause)
            step += 1
            if step == fail_at:
                print("\ntorch.OutOfMemoryError: CUDA out of memory.", file=sys.stderr,
                      flush=True)
                return 1
            loss = max(0.01, loss * 0.999 + (rng.random() - 0.5) * 0.004)
            if time.time() - last >= 0.1 or step == steps:   # tqdm's mininterval
                sys.stderr.write("\r" + bar(step, steps, t0, loss))
                sys.stderr.flush()
                last = time.time()
    sys.stderr.write("\n")
    dim = a.network_dim or 4
    alpha = a.network_alpha if a.network_alpha is not None else 1
    tensors = {}
    for blk in ("down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q",
                "up_blocks_1_attentions_0_transformer_blocks_0_attn2_to_k"):
        nm = "lora_unet_" + blk
        down = struct.pack("<%df" % (dim * 8), *[rng.uniform(-0.1, 0.1) for _ in range(dim * 8)])
        up = struct.pack("<%df" % (dim * 8), *[rng.uniform(-0.1, 0.1) for _ in range(dim * 8)])
        tensors[nm + ".lora_down.weight"] = ("F32", [dim, 8], down)
        tensors[nm + ".lora_up.weight"] = ("F32", [8, dim], up)
        tensors[nm + ".alpha"] = ("F32", [], struct.pack("<f", alpha))
    model = a.pretrained_model_name_or_path
    version = "sdxl_base_v1-0" if sdxl else ("sd_v2" if a.v2 else "sd_v1")
    md = {
        "ss_session_id": str(rng.randint(0, 2**32)),
        "ss_training_started_at": str(started),
        "ss_output_name": str(a.output_name),
        "ss_learning_rate": str(a.learning_rate),
        "ss_text_encoder_lr": str(a.text_encoder_lr),
        "ss_unet_lr": str(a.unet_lr),
        "ss_num_train_images": str(images),
        "ss_num_reg_images": "0",
        "ss_num_batches_per_epoch": str(batches),
        "ss_num_epochs": str(epochs),
        "ss_max_train_steps": str(steps),
        "ss_network_module": a.network_module,
        "ss_network_dim": str(a.network_dim),
        "ss_network_alpha": str(a.network_alpha),
        "ss_mixed_precision": str(a.mixed_precision or "no"),
        "ss_v2": str(bool(a.v2)),
        "ss_base_model_version": version,
        "ss_seed": str(seed),
        "ss_resolution": str(a.resolution),
        "ss_datasets": json.dumps(ds_meta),
        "ss_tag_frequency": json.dumps(tag_frequency),
        "ss_dataset_dirs": json.dumps(dirs),
        "ss_sd_model_name": os.path.basename(model),
        "ss_training_finished_at": str(time.time()),
        "ss_steps": str(step),
        "ss_epoch": str(epochs),
    }
    if os.path.exists(model):
        with open(model, "rb") as fh:
            fh.seek(0x100000)
            md["ss_sd_model_hash"] = hashlib.sha256(fh.read(0x10000)).hexdigest()[:8]
        with open(model, "rb") as fh:
            md["ss_new_sd_model_hash"] = hashlib.file_digest(fh, "sha256").hexdigest() \
                if hasattr(hashlib, "file_digest") else hashlib.sha256(fh.read()).hexdigest()
    # precalculate_safetensors_hashes: over a file holding only the ss_* metadata
    ss_only = safetensors_bytes(tensors, {k: v for k, v in md.items() if k.startswith("ss_")})
    n = struct.unpack("<Q", ss_only[:8])[0]
    md["sshs_model_hash"] = hashlib.sha256(ss_only[8 + n:]).hexdigest()
    md["sshs_legacy_hash"] = hashlib.sha256(ss_only[0x100000:0x110000]).hexdigest()[:8]
    if a.no_metadata:
        md = {k: md[k] for k in ("ss_base_model_version", "ss_network_module",
                                 "ss_network_dim", "ss_network_alpha", "sshs_model_hash",
                                 "sshs_legacy_hash")}
    os.makedirs(a.output_dir, exist_ok=True)
    ext = "." + (a.save_model_as or "safetensors")
    out = os.path.join(a.output_dir, (a.output_name or "last") + ext)
    print("\nsaving checkpoint: %s" % out, flush=True)
    tmp = out + ".tmp"
    with open(tmp, "wb") as fh:
        fh.write(safetensors_bytes(tensors, md))
    os.replace(tmp, out)
    print("model saved.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
