# kiln train run with the kohya stand-in (tests/train/kohya_standin.py) as a local command:
# progress events, kill -9 of kiln mid-run then a rerun that reattaches (no second trainer)
# and collects, the LoRA registered under its spec name with training facts, --cancel and
# Ctrl-C leaving the trainer running, a tampered output (ss_num_train_images) refused, a
# changed manifest refused.
. "$(dirname "$0")/lib.sh"
P=$T/p
# tests/train/make_dataset.py's project (two datasets: 21 and 6 images once prepared, repeats
# 10 and 2), trained for 60 steps by the stand-in
$PY "$KILN_SRC/tests/train/make_dataset.py" "$P"
$PY - "$P/kiln.yaml" "$PY" "$KILN_SRC/tests/train/kohya_standin.py" <<'PY'
import sys
p, py, standin = sys.argv[1:]
s = open(p).read()
s = s.replace("steps: 1500", "steps: 60", 1)
s = s.replace('local: {command: ["accelerate", "launch", "sdxl_train_network.py"]}',
              'local: {command: ["%s", "%s", "sdxl_train_network.py"]}' % (py, standin), 1)
open(p, "w").write(s)
PY
prepare() { "$KILN" -C "$P" train prepare owl_style -q >/dev/null 2>&1; }
D=$P/.kiln/train/owl_style
# a process runs (a zombie does not: an orphan's reaper may be slow in a container)
alive() { [ -r /proc/$1/stat ] && [ "$(sed 's/.*) //' /proc/$1/stat | cut -c1)" != Z ]; }

# not prepared: refused, nothing started
"$KILN" -C "$P" train run owl_style >"$T/o" 2>&1
expect_eq "run before prepare" $? 1
expect_contains "not prepared" "$T/o" "kiln train prepare owl_style"
prepare
expect_eq "prepare" $? 0

# kill -9 of kiln mid-run: the trainer keeps going; the rerun reattaches and collects
export KOHYA_STANDIN_STEP_SECONDS=0.05
"$KILN" -C "$P" train run owl_style --json >"$T/j1" 2>"$T/e1" &
K=$!
for i in $(seq 50); do grep -q '"event":"step"' "$T/j1" 2>/dev/null && break; sleep 0.1; done
# kiln follows the trainer without holding the project lock: other verbs run meanwhile
"$KILN" -C "$P" plan -q >"$T/plan" 2>&1
expect_eq "a write verb during training ($(cat "$T/plan"))" $? 0
kill -9 $K
wait $K 2>/dev/null
expect_contains "step events before the kill" "$T/j1" '"event":"step"'
[ -f "$D/run.json" ] && ok || fail "run.json written before waiting"
PID=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["pid"])' "$D/run.json")
alive "$PID" && ok || fail "the trainer outlives kiln -9"
"$KILN" -C "$P" train run owl_style --json >"$T/j2" 2>"$T/e2"
expect_eq "rerun collects ($(cat "$T/e2"))" $? 0
expect_contains "reattached: no new start" "$T/j2" '"event":"done"'
grep -q '"event":"start"' "$T/j2" && fail "a second trainer was started" || ok
expect_eq "one trainer ran" "$(grep -c 'running training' "$D/log")" 1
$PY - "$T/j2" "$D/log" <<'PY' >"$T/py" 2>&1
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
steps = [e for e in ev if e["event"] == "step"]
assert steps and steps[-1]["step"] == 60 and steps[-1]["total"] == 60, steps[-1:]
assert all(isinstance(e["loss"], float) for e in steps), steps[:2]
done = ev[-1]
assert done["event"] == "done" and len(done["lora_hash"]) == 12, done
PY
expect_eq "step events and done ($(cat "$T/py"))" $? 0
[ -f "$D/run.json" ] && fail "run.json left after collecting" || ok

# registered under its spec name with its training facts
"$KILN" -C "$P" models ls --json >"$T/ls" 2>&1
$PY - "$T/ls" "$D/output/owl_style.safetensors" <<'PY' >"$T/py" 2>&1
import hashlib, json, struct, sys
r = [json.loads(l) for l in open(sys.argv[1])]
assert len(r) == 1, r
r = r[0]
b = open(sys.argv[2], "rb").read()
n = struct.unpack("<Q", b[:8])[0]
assert r["name"] == "owl_style" and r["kind"] == "lora", r
assert r["sha256"] == hashlib.sha256(b).hexdigest()
assert r["a1111"]["lora_hash"] == hashlib.sha256(b[8 + n:]).hexdigest()[:12]
assert r["trained_on"] == ["data/owls", "data/more"], r["trained_on"]
t = r["training"]
assert t["images_x_repeats"] == 21 * 10 + 6 * 2 and t["steps"] == 60 and t["seed"] == 7, t
md = r["safetensors"]["metadata"]
assert md["ss_num_train_images"] == "222", md["ss_num_train_images"]
assert json.loads(md["ss_dataset_dirs"]) == {"0": {"n_repeats": 10, "img_count": 21},
                                             "1": {"n_repeats": 2, "img_count": 6}}
assert md["ss_sd_model_name"] == "sd_xl_base_1.0.safetensors"
assert md["ss_base_model_version"] == "sdxl_base_v1-0"
PY
expect_eq "registered with training facts ($(cat "$T/py"))" $? 0

# Ctrl-C: kiln leaves, the trainer stays, says how to reattach; --cancel stops it
"$KILN" -C "$P" train run owl_style -q >"$T/o3" 2>"$T/e3" &
K=$!
for i in $(seq 50); do [ -f "$D/run.json" ] && break; sleep 0.1; done
sleep 0.3
kill -INT $K
wait $K
expect_eq "Ctrl-C exit" $? 130
expect_contains "how to reattach" "$T/e3" "kiln train run owl_style --cancel"
PID=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["pid"])' "$D/run.json")
alive "$PID" && ok || fail "the trainer outlives Ctrl-C"
# prepare refuses while the run is under way, naming it and what to do; nothing rewritten
MSHA=$(sha256sum "$D/manifest.json")
"$KILN" -C "$P" train prepare owl_style >"$T/op" 2>&1
expect_eq "prepare during a run" $? 1
expect_contains "names the run" "$T/op" "a run of training 'owl_style'"
expect_contains "names its trainer" "$T/op" "process $PID"
expect_contains "says what to do" "$T/op" "kiln train run owl_style"
expect_eq "manifest untouched" "$(sha256sum "$D/manifest.json")" "$MSHA"
"$KILN" -C "$P" train run owl_style --cancel >"$T/o4" 2>&1
expect_eq "cancel ($(cat "$T/o4"))" $? 0
sleep 0.3
alive "$PID" && fail "the trainer was not stopped" || ok
[ -f "$D/run.json" ] && fail "run.json left after cancel" || ok
prepare
expect_eq "prepare after the cancel" $? 0

# a trainer whose output lies about its images is refused, naming both values
export KOHYA_STANDIN_STEP_SECONDS=0.001
# a trainer that fails: exit 1 with its last words, and the next run starts afresh
KOHYA_STANDIN_FAIL_AT=5 "$KILN" -C "$P" train run owl_style >"$T/of" 2>&1
expect_eq "failed trainer" $? 1
expect_contains "its last words" "$T/of" "CUDA out of memory"
[ -f "$D/run.json" ] && fail "run.json left after a failure" || ok
"$KILN" -C "$P" train run owl_style -q >/dev/null 2>&1
expect_eq "a clean run" $? 0
$PY - "$D/output/owl_style.safetensors" <<'PY'
import json, struct, sys
p = sys.argv[1]
b = open(p, "rb").read()
n = struct.unpack("<Q", b[:8])[0]
h = json.loads(b[8:8 + n])
h["__metadata__"]["ss_num_train_images"] = "221"
t = json.dumps(h).encode()
t += b" " * (-len(t) % 8)
open(p + ".bad", "wb").write(struct.pack("<Q", len(t)) + t + b[8 + n:])
PY
# a "trainer" that writes the tampered file where kohya writes (kiln's args ignored)
sed -i "s|local: {command: .*|local: {command: [\"$PY\", \"-c\", \"import shutil; shutil.copy('$D/output/owl_style.safetensors.bad', '$D/output/owl_style.safetensors')\"]}|" "$P/kiln.yaml"
prepare
"$KILN" -C "$P" train run owl_style >"$T/o6" 2>&1
expect_eq "tampered output refused" $? 1
expect_contains "names both values" "$T/o6" "ss_num_train_images is 221 in the trained file but 222 in the manifest"
"$KILN" -C "$P" models ls --json >"$T/ls2"
expect_eq "nothing more registered" "$(wc -l <"$T/ls2")" 2

# the manifest edited after prepare: refused
sed -i 's/"seed": 7/"seed": 8/' "$D/manifest.json"
"$KILN" -C "$P" train run owl_style >"$T/o7" 2>&1
expect_eq "changed manifest refused" $? 1
expect_contains "changed manifest message" "$T/o7" "the manifest changed since"
finish
