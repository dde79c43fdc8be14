// kiln's SigV4 signer against two independent ones: @smithy/signature-v4 (the AWS SDK for
// JavaScript v3's) and aws4. Each case is one request as kiln sends it (S3 path-style and
// virtual-hosted PUT/GET, a listing with an unsorted query, keys needing encoding, the
// SageMaker invocation with its headers, a session token); every signer signs the same
// headers at the same instant, and the Authorization values must be equal byte for byte.
//   node compare.mjs KILN_SIGV4_TOOL
// Prints "N passed, N failed"; exits 1 on any failure.
import { execFileSync } from "node:child_process";
import { SignatureV4 } from "@smithy/signature-v4";
import { Hash } from "@smithy/hash-node";
import aws4 from "aws4";

const tool = process.argv[2];
const T = 1765100000; // 2025-12-07T09:33:20Z
const AK = "AKIDKILNORACLE", SK = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYzz/kiln+key";
const json = '{"prompt":"an owl, \\u00e9t\\u00e9","seed":42,"steps":20}';
const cases = [
  { name: "s3 PUT path-style", method: "PUT", url: "http://127.0.0.1:9000/kiln-in/jobs/kiln-1-1.json",
    service: "s3", body: json, extra: { "Content-Type": "application/json" } },
  { name: "s3 PUT virtual-hosted", method: "PUT",
    url: "https://kiln-in.s3.eu-west-2.amazonaws.com/jobs/kiln-abc-2.json", region: "eu-west-2",
    service: "s3", body: json, extra: { "Content-Type": "application/json" } },
  { name: "s3 GET key with spaces, $ and UTF-8", method: "GET",
    url: "https://kiln-out.s3.us-east-1.amazonaws.com/async%20output/%E1%88%B4%24x%2B1.out",
    service: "s3", body: "" },
  { name: "s3 list, unsorted query", method: "GET",
    url: "https://kiln-in.s3.us-east-1.amazonaws.com/?prefix=jobs%2Fa%20b%2F&max-keys=1&list-type=2",
    service: "s3", body: "" },
  { name: "s3 GET with a session token", method: "GET",
    url: "http://localhost:4566/kiln-out/async-output/0b4c.out", service: "s3", body: "",
    token: "FQoGZXIvYXdzE//kiln+token==" },
  { name: "sagemaker async invocation", method: "POST",
    url: "https://runtime.sagemaker.us-east-1.amazonaws.com/endpoints/sd-async/async-invocations",
    service: "sagemaker", body: "", extra: {
      "Content-Type": "application/json",
      "X-Amzn-SageMaker-InputLocation": "s3://kiln-in/jobs/kiln-abc-1.json",
      "X-Amzn-SageMaker-Inference-Id": "kiln-abc-1",
      "X-Amzn-SageMaker-RequestTTLSeconds": "21600",
      "X-Amzn-SageMaker-InvocationTimeoutSeconds": "600",
      "X-Amzn-SageMaker-Content-Type": "application/json",
      "X-Amzn-SageMaker-Accept": "application/json;jpeg" } },
  { name: "sagemaker with a token and a port", method: "POST",
    url: "http://127.0.0.1:8080/endpoints/my-endpoint-2/async-invocations", service: "sagemaker",
    body: "", token: "IQoJb3JpZ2luX2VjE//kiln", extra: {
      "Content-Type": "application/json", "X-Amzn-SageMaker-Inference-Id": "kiln-x-3" } },
  { name: "another service: path normalised and encoded twice", method: "GET",
    url: "https://example.amazonaws.com/a/./b//c%20d/../e?b=2&a=1&a=0&c=",
    service: "service", body: "" },
];

function kiln(c, extraHeaders) {
  const extra = Object.entries(extraHeaders).map(([k, v]) => `${k}: ${v}`).join("\n");
  const out = execFileSync(tool, [c.method, c.url, c.body, String(T), c.service,
    c.region || "us-east-1", AK, SK, c.token || "", extra]).toString();
  const h = {};
  for (const l of out.split("\n")) {
    const i = l.indexOf(": ");
    if (i > 0) h[l.slice(0, i).toLowerCase()] = l.slice(i + 2);
  }
  return h;
}

function hostOf(u) {
  // as libcurl sends Host: the port unless it is the scheme's default
  return u.port && u.port !== (u.protocol === "https:" ? "443" : "80") ? `${u.hostname}:${u.port}` : u.hostname;
}

async function smithy(c, sha) {
  const u = new URL(c.url);
  const query = {};
  for (const [k, v] of u.searchParams) {
    if (k in query) query[k] = [].concat(query[k], v); else query[k] = v;
  }
  const headers = { host: hostOf(u), "x-amz-content-sha256": sha };
  for (const [k, v] of Object.entries(c.extra || {})) headers[k.toLowerCase()] = v;
  const signer = new SignatureV4({
    credentials: { accessKeyId: AK, secretAccessKey: SK, sessionToken: c.token },
    region: c.region || "us-east-1", service: c.service, sha256: Hash.bind(null, "sha256"),
    uriEscapePath: c.service !== "s3", applyChecksum: true,
  });
  // smithy normalises paths only through its caller; the SDK hands it the resolved path
  let path = u.pathname;
  if (c.service !== "s3") {
    const segs = [];
    for (const s of path.split("/")) {
      if (s === "" || s === ".") continue;
      if (s === "..") segs.pop(); else segs.push(s);
    }
    path = "/" + segs.join("/") + (segs.length && path.endsWith("/") ? "/" : "");
    path = decodeURIComponent(path);
  }
  const req = await signer.sign({ method: c.method, protocol: u.protocol, hostname: u.hostname,
    port: u.port ? Number(u.port) : undefined, path, query, headers, body: c.body || undefined },
    { signingDate: new Date(T * 1000) });
  return { authz: req.headers.authorization, headers: req.headers };
}

function awsfour(c, sha) {
  const u = new URL(c.url);
  const d = new Date(T * 1000).toISOString().replace(/[:-]|\.\d{3}/g, "");
  const headers = { "X-Amz-Date": d, "X-Amz-Content-Sha256": sha };
  for (const [k, v] of Object.entries(c.extra || {})) headers[k] = v;
  const o = aws4.sign({ host: hostOf(u), method: c.method, path: u.pathname + u.search,
    service: c.service, region: c.region || "us-east-1", headers, body: c.body || undefined },
    { accessKeyId: AK, secretAccessKey: SK, sessionToken: c.token });
  return { authz: o.headers.Authorization, headers: o.headers };
}

const SELF = new Set(["host", "x-amz-date", "x-amz-content-sha256", "x-amz-security-token",
  "authorization"]);
function signedExtra(authz, headers) {
  // the headers the oracle signed beyond those kiln adds itself, to sign them in kiln too
  const names = /SignedHeaders=([^,]+)/.exec(authz)[1].split(";");
  const out = {};
  for (const [k, v] of Object.entries(headers))
    if (names.includes(k.toLowerCase()) && !SELF.has(k.toLowerCase())) out[k] = String(v);
  return out;
}

let pass = 0, fail = 0;
for (const c of cases) {
  const sha = (await import("node:crypto")).createHash("sha256").update(c.body).digest("hex");
  const oracles = [["@smithy/signature-v4", await smithy(c, sha)]];
  // aws4 reads one value per name for S3 and folds repeated names otherwise: the
  // repeated-name case is the SDK's alone
  if (!c.url.includes("a=1&a=0")) oracles.push(["aws4", awsfour(c, sha)]);
  for (const [who, o] of oracles) {
    const k = kiln(c, signedExtra(o.authz, o.headers));
    if (k.authorization === o.authz && k["x-amz-content-sha256"] === sha) {
      pass++;
    } else {
      fail++;
      console.log(`FAIL ${c.name} vs ${who}:\n  kiln: ${k.authorization}\n  ${who}: ${o.authz}`);
    }
  }
}
console.log(`${pass} passed, ${fail} failed`);
process.exit(fail ? 1 : 0);
