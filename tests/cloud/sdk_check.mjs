// The RunPod test server against the npm runpod-sdk client (its baseUrl option): run, status,
// cancel and health through the SDK must work, and say what the server says. Usage:
//   node sdk_check.mjs http://127.0.0.1:PORT KEY
import runpodSdk from "runpod-sdk";

const [base, key] = process.argv.slice(2);
const fail = (m) => { console.error("sdk_check: " + m); process.exit(1); };
const rp = runpodSdk(key, { baseUrl: base + "/v2" });
const ep = rp.endpoint("sdkcheck");
const input = { prompt: "an owl", negative_prompt: "", seed: 7, steps: 4, cfg_scale: 7,
                width: 64, height: 64, sampler_name: "Euler a" };

const run = await ep.run({ input, policy: { executionTimeout: 60000, ttl: 600000 } });
if (!run.id || run.status !== "IN_QUEUE") fail("run: " + JSON.stringify(run));
let st;
for (let i = 0; i < 200; i++) {
  st = await ep.status(run.id);
  if (!["IN_QUEUE", "IN_PROGRESS"].includes(st.status)) break;
  await new Promise((r) => setTimeout(r, 50));
}
if (st.status !== "COMPLETED" || !st.completed || !st.succeeded) fail("status: " + st.status);
if (typeof st.executionTime !== "number" || typeof st.delayTime !== "number")
  fail("status has no executionTime/delayTime");
const png = Buffer.from(st.output.images[0], "base64");
if (png.subarray(1, 4).toString() !== "PNG") fail("output.images[0] is not a PNG");
if (JSON.parse(st.output.info).seed !== 7) fail("info.seed is not the seed sent");

// a job cancelled while it waits in the queue (the one worker is busy with the first)
const busy = await ep.run({ input });
const queued = await ep.run({ input });
const c = await ep.cancel(queued.id);
if (c.id !== queued.id || c.status !== "CANCELLED") fail("cancel: " + JSON.stringify(c));
const after = await ep.status(queued.id);
if (after.status !== "CANCELLED" || !after.completed || after.succeeded)
  fail("status after cancel: " + JSON.stringify(after));

const h = await ep.health();
for (const k of ["completed", "failed", "inProgress", "inQueue", "retried"])
  if (typeof h.jobs[k] !== "number") fail("health.jobs." + k + " missing: " + JSON.stringify(h));
for (const k of ["idle", "initializing", "ready", "running", "throttled"])
  if (typeof h.workers[k] !== "number") fail("health.workers." + k + " missing");
if (h.jobs.completed < 1) fail("health: no completed job counted");

// a wrong key: the SDK sees RunPod's 401
const bad = await runpodSdk("wrong", { baseUrl: base + "/v2" }).endpoint("sdkcheck").health()
  .then((r) => r, (e) => ({ status: e?.response?.status }));
if (bad.status !== 401) fail("a wrong key was not refused with 401: " + JSON.stringify(bad));
console.log("sdk_check: ok (run, status, cancel, health, 401); busy job " + busy.id);
