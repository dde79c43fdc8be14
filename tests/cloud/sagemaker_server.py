#!/usr/bin/python3
"""sagemaker_server: a SageMaker runtime (asynchronous inference) and S3 stand-in for kiln's
tests, on one port.

  S3, path-style          PUT/GET/HEAD /BUCKET/KEY, GET /BUCKET/?list-type=2&prefix=..&max-keys=..,
                          GET with a presigned URL's query (X-Amz-Signature, checked too)
  S3, virtual-hosted      the same with Host: BUCKET.S3DOMAIN (--s3-domain, default
                          s3.test.invalid) and /KEY: reached through this server as an HTTP
                          proxy (http_proxy=http://127.0.0.1:PORT), which it also is
  SageMaker runtime       POST /endpoints/NAME/async-invocations
  test hooks              GET /__test__/stats, POST /__test__/config

Every request's AWS Signature V4 is recomputed here, with hashlib/hmac and nothing of
botocore or kiln (canonical request, string to sign, signing key), and a wrong one is refused
as AWS refuses it: S3 answers 403 with an <Error><Code>SignatureDoesNotMatch</Code> XML
document (InvalidAccessKeyId for an unknown key, XAmzContentSHA256Mismatch when the payload
hash is not the body's, InvalidToken for a wrong session token); the runtime answers 403 with
x-amzn-ErrorType InvalidSignatureException and a JSON {"message"} (rest-json, as botocore's
sagemaker-runtime 2017-05-13 model reads errors), UnrecognizedClientException for an unknown
key or token. S3 refuses x-amz-content-sha256: UNSIGNED-PAYLOAD for a PUT (kiln never sends
it) and a request without the header.

An invocation checks the headers of InvokeEndpointAsync (InputLocation an existing s3://
object, InferenceId, RequestTTLSeconds 60..21600, InvocationTimeoutSeconds 1..3600) and
answers 202 {"InferenceId"} with X-Amzn-SageMaker-OutputLocation and -FailureLocation; after
--delay-ms it runs the request: worker a1111 through the SD test server's own A1111 txt2img
(tests/sdserver/sd_test_server.py, imported: the same images, infotext and checks), worker
jumpstart from {prompt, negative_prompt, width, height, num_inference_steps,
guidance_scale, seed} to {"generated_images": [base64], "prompt"} (a JPEG made by the vips
command with --jpeg, as JumpStart sends; a PNG otherwise). --fail-rate of the jobs (chosen by a hash
of the inference id, so a retry with another id may pass) write a failure object instead.
Objects live in memory.

Run: /usr/bin/python3 sagemaker_server.py --help
"""
import argparse
import base64
import datetime
import hashlib
import hmac
import http.server
import json
import os
import signal
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "sdserver"))
import sd_test_server as sd  # noqa: E402

UNRESERVED = set(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~")


def uri_encode(data, keep_slash):
    out = []
    for c in data:
        if c in UNRESERVED or (keep_slash and c == ord("/")):
            out.append(chr(c))
        else:
            out.append("%%%02X" % c)
    return "".join(out)


def canonical_path(raw_path, s3):
    """raw_path: the request target's path as received (percent-encoded on the wire)."""
    if s3:
        # S3: the path as sent, decoded once and encoded once (no normalisation)
        return uri_encode(urllib.parse.unquote_to_bytes(raw_path), True) or "/"
    # other services: normalised, then the wire path encoded again
    segs = []
    for s in raw_path.split("/"):
        if s in ("", "."):
            continue
        if s == "..":
            if segs:
                segs.pop()
            continue
        segs.append(s)
    p = "/" + "/".join(segs)
    if segs and raw_path.endswith("/"):
        p += "/"
    return uri_encode(p.encode(), True)


def canonical_query(query):
    pairs = []
    for part in query.split("&"):
        if not part:
            continue
        k, _, v = part.partition("=")
        pairs.append((uri_encode(urllib.parse.unquote_to_bytes(k), False),
                      uri_encode(urllib.parse.unquote_to_bytes(v), False)))
    pairs.sort()
    return "&".join("%s=%s" % kv for kv in pairs)


def sign_key(secret, date, region, service):
    k = ("AWS4" + secret).encode()
    for part in (date, region, service, "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    return k


class SigError(Exception):
    def __init__(self, code, message, status=403, extra=None):
        super().__init__(message)
        self.code, self.message, self.status, self.extra = code, message, status, extra or {}


def verify_presigned(method, raw_path, query, headers, keys, region, now):
    """A presigned S3 request (query-string authentication, S3 API reference "Authenticating
    Requests: Using Query Parameters"): X-Amz-Algorithm, -Credential, -Date, -Expires (1 to
    604800 s, refused once past), -SignedHeaders (host at least), -Security-Token when the key
    has a token, -Signature over the query without it and payload UNSIGNED-PAYLOAD."""
    q = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
    hd = {}
    for k, v in headers:
        hd.setdefault(k.lower(), []).append(v)
    if q.get("X-Amz-Algorithm") != "AWS4-HMAC-SHA256":
        raise SigError("AuthorizationQueryParametersError", "X-Amz-Algorithm only supports "
                       "\"AWS4-HMAC-SHA256\"", 400)
    cred = q.get("X-Amz-Credential", "").split("/")
    if len(cred) != 5 or cred[4] != "aws4_request" or cred[3] != "s3" or cred[2] != region:
        raise SigError("AuthorizationQueryParametersError", "malformed X-Amz-Credential", 400)
    akid, date = cred[0], cred[1]
    if akid not in keys:
        raise SigError("InvalidAccessKeyId", "The AWS Access Key Id you provided does not "
                       "exist in our records.", extra={"AWSAccessKeyId": akid})
    amz = q.get("X-Amz-Date", "")
    try:
        t = datetime.datetime.strptime(amz, "%Y%m%dT%H%M%SZ").replace(
            tzinfo=datetime.timezone.utc).timestamp()
        expires = int(q.get("X-Amz-Expires", ""))
    except ValueError:
        raise SigError("AuthorizationQueryParametersError", "X-Amz-Date and X-Amz-Expires "
                       "are needed", 400)
    if not 1 <= expires <= 604800:
        raise SigError("AuthorizationQueryParametersError", "X-Amz-Expires must be less than "
                       "a week (in seconds) that is 604800", 400)
    if now > t + expires:
        raise SigError("AccessDenied", "Request has expired")
    if amz[:8] != date:
        raise SigError("SignatureDoesNotMatch", "the credential date is not X-Amz-Date's")
    secret, token = keys[akid]
    if token is not None and q.get("X-Amz-Security-Token") != token:
        raise SigError("InvalidToken", "The provided token is malformed or otherwise invalid.",
                       400)
    signed = q.get("X-Amz-SignedHeaders", "").split(";")
    if "host" not in signed:
        raise SigError("AccessDenied", "host must be signed")
    lines = []
    for name in signed:
        if name not in hd:
            raise SigError("SignatureDoesNotMatch", "signed header %s is missing" % name)
        lines.append("%s:%s\n" % (name, ",".join(" ".join(v.split()) for v in hd[name])))
    rest = "&".join(p for p in query.split("&") if not p.startswith("X-Amz-Signature="))
    creq = "\n".join([method, canonical_path(raw_path, True), canonical_query(rest),
                      "".join(lines), ";".join(signed), "UNSIGNED-PAYLOAD"])
    sts = "\n".join(["AWS4-HMAC-SHA256", amz, "%s/%s/s3/aws4_request" % (date, region),
                     hashlib.sha256(creq.encode()).hexdigest()])
    want = hmac.new(sign_key(secret, date, region, "s3"), sts.encode(),
                    hashlib.sha256).hexdigest()
    if not hmac.compare_digest(want, q.get("X-Amz-Signature", "")):
        raise SigError("SignatureDoesNotMatch", "The request signature we calculated does "
                       "not match the signature you provided. Check your key and signing "
                       "method.", extra={"AWSAccessKeyId": akid, "StringToSign": sts,
                                         "CanonicalRequest": creq})


def verify(method, raw_path, query, headers, body, service, keys, region, now):
    """Raise SigError unless the request carries a valid SigV4 Authorization for service.
    headers: list of (name, value) as received. keys: {access key: (secret, token or None)}."""
    if service == "s3" and "X-Amz-Signature=" in query:
        with_sig = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
        if "X-Amz-Signature" in with_sig:
            return verify_presigned(method, raw_path, query, headers, keys, region, now)
    hd = {}
    for k, v in headers:
        hd.setdefault(k.lower(), []).append(v)
    auth = (hd.get("authorization") or [""])[0]
    if not auth.startswith("AWS4-HMAC-SHA256 "):
        raise SigError("MissingAuthenticationToken" if service != "s3" else "AccessDenied",
                       "Missing Authentication Token" if service != "s3" else "Access Denied")
    fields = {}
    for part in auth[len("AWS4-HMAC-SHA256 "):].split(","):
        k, _, v = part.strip().partition("=")
        fields[k] = v
    cred = fields.get("Credential", "").split("/")
    if len(cred) != 5 or cred[4] != "aws4_request":
        raise SigError("AuthorizationHeaderMalformed", "malformed Credential", 400)
    akid, date, reg, svc = cred[0], cred[1], cred[2], cred[3]
    if akid not in keys:
        if service == "s3":
            raise SigError("InvalidAccessKeyId", "The AWS Access Key Id you provided does not "
                           "exist in our records.", extra={"AWSAccessKeyId": akid})
        raise SigError("UnrecognizedClientException", "The security token included in the "
                       "request is invalid.")
    if reg != region or svc != service:
        raise SigError("AuthorizationHeaderMalformed" if service == "s3" else
                       "InvalidSignatureException",
                       "Credential should be scoped to a valid region/service ('%s', '%s'), "
                       "not '%s', '%s'" % (region, service, reg, svc),
                       400 if service == "s3" else 403)
    amz = (hd.get("x-amz-date") or [""])[0]
    try:
        t = datetime.datetime.strptime(amz, "%Y%m%dT%H%M%SZ").replace(
            tzinfo=datetime.timezone.utc).timestamp()
    except ValueError:
        raise SigError("AccessDenied" if service == "s3" else "IncompleteSignatureException",
                       "no valid x-amz-date")
    if abs(t - now) > 900:
        raise SigError("RequestTimeTooSkewed" if service == "s3" else "InvalidSignatureException",
                       "Signature expired: the difference between the request time and the "
                       "server's time is too large.")
    if amz[:8] != date:
        raise SigError("SignatureDoesNotMatch", "the credential date is not x-amz-date's")
    secret, token = keys[akid]
    signed = fields.get("SignedHeaders", "").split(";")
    for need in ("host", "x-amz-date"):
        if need not in signed:
            raise SigError("AccessDenied", "%s must be signed" % need)
    if token is not None:
        got = (hd.get("x-amz-security-token") or [None])[0]
        if got != token or "x-amz-security-token" not in signed:
            raise SigError("InvalidToken" if service == "s3" else
                           "UnrecognizedClientException",
                           "The provided token is malformed or otherwise invalid.",
                           400 if service == "s3" else 403)
    body_hash = hashlib.sha256(body).hexdigest()
    payload = body_hash
    if service == "s3":
        ph = (hd.get("x-amz-content-sha256") or [None])[0]
        if ph is None:
            raise SigError("InvalidRequest", "Missing required header for this request: "
                           "x-amz-content-sha256", 400)
        if ph == "UNSIGNED-PAYLOAD" and method == "PUT":
            raise SigError("InvalidRequest", "kiln's test S3 refuses UNSIGNED-PAYLOAD for PUT",
                           400)
        if ph != "UNSIGNED-PAYLOAD" and ph != body_hash:
            raise SigError("XAmzContentSHA256Mismatch", "The provided 'x-amz-content-sha256' "
                           "header does not match what was computed.", 400,
                           {"ClientComputedContentSHA256": ph,
                            "S3ComputedContentSHA256": body_hash})
        payload = ph
        if "x-amz-content-sha256" not in signed:
            raise SigError("AccessDenied", "x-amz-content-sha256 must be signed")
    lines = []
    for name in signed:
        if name not in hd:
            raise SigError("SignatureDoesNotMatch" if service == "s3" else
                           "InvalidSignatureException", "signed header %s is missing" % name)
        vals = [" ".join(v.split()) for v in hd[name]]
        lines.append("%s:%s\n" % (name, ",".join(vals)))
    creq = "\n".join([method, canonical_path(raw_path, service == "s3"), canonical_query(query),
                      "".join(lines), ";".join(signed), payload])
    sts = "\n".join(["AWS4-HMAC-SHA256", amz, "%s/%s/%s/aws4_request" % (date, reg, svc),
                     hashlib.sha256(creq.encode()).hexdigest()])
    want = hmac.new(sign_key(secret, date, reg, svc), sts.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(want, fields.get("Signature", "")):
        if service == "s3":
            raise SigError("SignatureDoesNotMatch", "The request signature we calculated does "
                           "not match the signature you provided. Check your key and signing "
                           "method.", extra={"AWSAccessKeyId": akid, "StringToSign": sts,
                                             "SignatureProvided": fields.get("Signature", ""),
                                             "CanonicalRequest": creq})
        raise SigError("InvalidSignatureException", "The request signature we calculated does "
                       "not match the signature you provided. Check your AWS Secret Access Key "
                       "and signing method. Consult the service documentation for details.")


def xml_escape(s):
    return (str(s).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))


def s3_error(code, message, status, extra=None, resource=""):
    body = ['<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>%s</Code><Message>%s'
            '</Message>' % (code, xml_escape(message))]
    for k, v in (extra or {}).items():
        body.append("<%s>%s</%s>" % (k, xml_escape(v), k))
    if resource:
        body.append("<Resource>%s</Resource>" % xml_escape(resource))
    body.append("<RequestId>%s</RequestId><HostId>kiln-test</HostId></Error>"
                % uuid.uuid4().hex[:16].upper())
    return status, "".join(body).encode(), "application/xml", []


def sm_error(code, message, status):
    return (status, json.dumps({"message": message}).encode(), "application/json",
            [("x-amzn-ErrorType", code + ":http://internal.amazon.com/coral/com.amazon.coral."
              "service/"), ("x-amzn-RequestId", str(uuid.uuid4()))])


class State:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.objects = {}          # (bucket, key) -> bytes
        self.keys = {args.access_key: (args.secret_key, args.token)}
        self.stats = {"requests": 0, "bad_signatures": 0, "puts": 0, "gets": 0, "gets_404": 0,
                      "lists": 0, "invocations": 0, "outputs": 0, "failures": 0,
                      "virtual_hosted": 0, "heads": 0, "presigned": 0, "put_bytes": 0}
        self.invoked = {}          # inference id -> times invoked
        self.job_seconds = {}      # inference id -> seconds from 202 to the output written
        self.lifetimes = {}        # inference id -> [RequestTTLSeconds, InvocationTimeoutSeconds]
        sdargs = sd.parse_args(["--protocol", "a1111", "--latency-ms", "0",
                                "--random-seed", "7"])
        self.sd_state = sd.State(sdargs)
        self.a1111 = sd.A1111(self.sd_state)
        self.config = {"delay_ms": args.delay_ms, "fail_rate": args.fail_rate,
                       "put_delay_ms": args.put_delay_ms}

    def put(self, bucket, key, data):
        with self.lock:
            self.objects[(bucket, key)] = data

    def get(self, bucket, key):
        with self.lock:
            return self.objects.get((bucket, key))


def to_jpeg(png):
    """JPEG bytes of a PNG, through the vips command (libvips-tools), as JumpStart answers."""
    with tempfile.TemporaryDirectory() as d:
        with open(os.path.join(d, "in.png"), "wb") as f:
            f.write(png)
        subprocess.run(["vips", "copy", os.path.join(d, "in.png"), os.path.join(d, "out.jpg")],
                       check=True, capture_output=True)
        return open(os.path.join(d, "out.jpg"), "rb").read()


def fails(inference_id, rate):
    if rate <= 0:
        return False
    h = int(hashlib.sha256(("fail:" + inference_id).encode()).hexdigest()[:8], 16)
    return h / 0xFFFFFFFF < rate


def run_job(st, name, inference_id, input_loc, out_loc, fail_loc, t0):
    """The endpoint's container: read the input, make the answer, write output or failure."""
    def write(loc, data):
        b, _, k = loc[5:].partition("/")
        st.put(b, k, data)

    b, _, k = input_loc[5:].partition("/")
    data = st.get(b, k)
    worker = st.args.worker
    if data is None:
        write(fail_loc, b"Failed to download the input: no such object " + input_loc.encode())
        ok = False
    elif fails(inference_id, st.config["fail_rate"]):
        write(fail_loc, json.dumps({"code": 500, "type": "InternalServerException",
                                    "message": "CUDA out of memory (test fault)"}).encode())
        ok = False
    elif worker == "a1111":
        req = sd.Request("POST", "/sdapi/v1/txt2img", "", {"content-type": "application/json"},
                         data)
        resp = st.a1111.txt2img(req)
        body = resp.body if isinstance(resp.body, bytes) else resp.body.encode()
        ok = resp.status == 200
        write(out_loc if ok else fail_loc, body if ok else json.dumps(
            {"code": resp.status, "message": body.decode("utf-8", "replace")}).encode())
    else:
        try:
            p = json.loads(data)
            params = {"prompt": p["prompt"], "negative_prompt": p.get("negative_prompt", ""),
                      "seed": int(p["seed"]), "width": int(p["width"]),
                      "height": int(p["height"]), "steps": int(p["num_inference_steps"]),
                      "cfg": float(p["guidance_scale"]), "sampler": "jumpstart"}
            unknown = set(p) - {"prompt", "negative_prompt", "seed", "width", "height",
                                "num_inference_steps", "guidance_scale",
                                "num_images_per_prompt"}
            if unknown:
                raise ValueError("unknown keys: %s" % ", ".join(sorted(unknown)))
            img = sd.render_png(params)
            if st.args.jpeg:
                img = to_jpeg(img)
            write(out_loc, json.dumps({"generated_images": [base64.b64encode(img).decode()],
                                       "prompt": p["prompt"]}).encode())
            ok = True
        except (ValueError, KeyError, TypeError) as e:
            write(fail_loc, json.dumps({"code": 400, "message": str(e)}).encode())
            ok = False
    with st.lock:
        st.stats["outputs" if ok else "failures"] += 1
        st.job_seconds[inference_id] = time.time() - t0


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *a):
        if self.server.st.args.verbose:
            sys.stderr.write("sagemaker_server: " + fmt % a + "\n")

    def send(self, status, body, ctype, headers=()):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def handle_any(self):
        st = self.server.st
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        split = urllib.parse.urlsplit(self.path)
        raw_path, query = split.path or "/", split.query
        # virtual-hosted S3: the bucket is the Host's first label before --s3-domain (what
        # AWS does for BUCKET.s3.REGION.amazonaws.com); a proxied request (absolute-form
        # target) carries the same Host header, which is what was signed
        host = (self.headers.get("Host") or "").rsplit(":", 1)[0].lower()
        vbucket = None
        dom = "." + st.args.s3_domain
        if host.endswith(dom) and "." not in host[:-len(dom)]:
            vbucket = host[:-len(dom)]
            with st.lock:
                st.stats["virtual_hosted"] += 1
        with st.lock:
            st.stats["requests"] += 1
        if raw_path.startswith("/__test__/"):
            return self.send(*self.test_hook(raw_path, body))
        service = "sagemaker" if raw_path.startswith("/endpoints/") and not vbucket else "s3"
        try:
            verify(self.command, raw_path, query, list(self.headers.items()), body, service,
                   st.keys, st.args.region, time.time())
            if "X-Amz-Signature=" in query:
                with st.lock:
                    st.stats["presigned"] += 1
        except SigError as e:
            with st.lock:
                st.stats["bad_signatures"] += 1
            if service == "s3":
                return self.send(*s3_error(e.code, e.message, e.status, e.extra, raw_path))
            return self.send(*sm_error(e.code, e.message, e.status))
        if service == "sagemaker":
            return self.send(*self.invoke(raw_path, body))
        return self.send(*self.s3(raw_path, query, body, vbucket))

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = handle_any

    def test_hook(self, path, body):
        st = self.server.st
        if path == "/__test__/stats":
            with st.lock:
                out = dict(st.stats)
                out["invoked"] = dict(st.invoked)
                out["objects"] = len(st.objects)
                out["job_seconds"] = dict(st.job_seconds)
                out["lifetimes"] = dict(st.lifetimes)
            return 200, json.dumps(out).encode(), "application/json", []
        if path == "/__test__/config":
            upd = json.loads(body or b"{}")
            with st.lock:
                st.config.update({k: v for k, v in upd.items() if k in st.config})
                out = dict(st.config)
            return 200, json.dumps(out).encode(), "application/json", []
        return 404, b"{}", "application/json", []

    def s3(self, raw_path, query, body, vbucket=None):
        st = self.server.st
        if vbucket:
            bucket, key = vbucket, raw_path[1:]
        else:
            bucket, _, key = raw_path[1:].partition("/")
        key = urllib.parse.unquote(key)
        if bucket not in st.args.buckets.split(","):
            return s3_error("NoSuchBucket", "The specified bucket does not exist", 404,
                            {"BucketName": bucket})
        if self.command == "PUT" and key:
            if st.config["put_delay_ms"] > 0:
                time.sleep(st.config["put_delay_ms"] / 1000.0)
            st.put(bucket, key, body)
            with st.lock:
                st.stats["puts"] += 1
                st.stats["put_bytes"] += len(body)
            etag = '"%s"' % hashlib.md5(body).hexdigest()
            return 200, b"", "application/xml", [("ETag", etag)]
        if self.command == "GET" and not key:
            q = urllib.parse.parse_qs(query, keep_blank_values=True)
            prefix = (q.get("prefix") or [""])[0]
            with st.lock:
                st.stats["lists"] += 1
                names = sorted(k for (b, k) in st.objects if b == bucket and
                               k.startswith(prefix))
            mk = int((q.get("max-keys") or ["1000"])[0])
            items = "".join("<Contents><Key>%s</Key></Contents>" % xml_escape(k)
                            for k in names[:mk])
            xml = ('<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult xmlns="http://s3.'
                   'amazonaws.com/doc/2006-03-01/"><Name>%s</Name><Prefix>%s</Prefix>'
                   '<KeyCount>%d</KeyCount><MaxKeys>%d</MaxKeys><IsTruncated>%s</IsTruncated>'
                   '%s</ListBucketResult>' % (xml_escape(bucket), xml_escape(prefix),
                                              min(mk, len(names)), mk,
                                              "true" if len(names) > mk else "false", items))
            return 200, xml.encode(), "application/xml", []
        if self.command == "HEAD" and key:
            data = st.get(bucket, key)
            with st.lock:
                st.stats["heads"] += 1
            if data is None:
                return 404, b"", "application/xml", []
            return 200, data, "application/octet-stream", []
        if self.command == "GET":
            data = st.get(bucket, key)
            with st.lock:
                st.stats["gets"] += 1
                if data is None:
                    st.stats["gets_404"] += 1
            if data is None:
                return s3_error("NoSuchKey", "The specified key does not exist.", 404,
                                {"Key": key})
            return 200, data, "application/octet-stream", []
        return s3_error("MethodNotAllowed", "The specified method is not allowed against "
                        "this resource.", 405)

    def invoke(self, raw_path, body):
        st = self.server.st
        parts = raw_path.split("/")
        if self.command != "POST" or len(parts) != 4 or parts[3] != "async-invocations":
            return sm_error("UnknownOperationException", "Unknown operation", 404)
        name = parts[2]
        if name != st.args.endpoint_name:
            return sm_error("ValidationError", "Endpoint %s of account 123456789012 not found."
                            % name, 400)
        h = {k.lower(): v for k, v in self.headers.items()}
        loc = h.get("x-amzn-sagemaker-inputlocation", "")
        iid = h.get("x-amzn-sagemaker-inference-id", "")
        try:
            ttl = int(h.get("x-amzn-sagemaker-requestttlseconds", "21600"))
            tmo = int(h.get("x-amzn-sagemaker-invocationtimeoutseconds", "900"))
        except ValueError:
            return sm_error("ValidationError", "RequestTTLSeconds and InvocationTimeoutSeconds "
                            "must be integers", 400)
        if not loc.startswith("s3://"):
            return sm_error("ValidationError", "1 validation error detected: Value at "
                            "'inputLocation' failed to satisfy constraint", 400)
        if not (60 <= ttl <= 21600) or not (1 <= tmo <= 3600):
            return sm_error("ValidationError", "RequestTTLSeconds must be in 60..21600 and "
                            "InvocationTimeoutSeconds in 1..3600", 400)
        if not iid or len(iid) > 64:
            return sm_error("ValidationError", "InferenceId must be 1 to 64 characters", 400)
        if body:
            return sm_error("ValidationError", "the body of an asynchronous invocation is "
                            "empty: the input is at InputLocation", 400)
        if h.get("x-amzn-sagemaker-content-type") != "application/json":
            return sm_error("ValidationError", "kiln's requests are application/json", 400)
        want_accept = "application/json;jpeg" if st.args.worker == "jumpstart" \
            else "application/json"
        if h.get("x-amzn-sagemaker-accept") != want_accept:
            return sm_error("ValidationError", "this endpoint's model answers Accept: %s"
                            % want_accept, 400)
        out_id = str(uuid.uuid4())
        out_loc = "s3://%s/async-output/%s.out" % (st.args.output_bucket, out_id)
        fail_loc = "s3://%s/async-failures/%s-error.out" % (st.args.output_bucket, out_id)
        with st.lock:
            st.stats["invocations"] += 1
            st.invoked[iid] = st.invoked.get(iid, 0) + 1
            st.lifetimes[iid] = [ttl, tmo]
            delay = st.config["delay_ms"] / 1000.0
        t = threading.Timer(delay, run_job, (st, name, iid, loc, out_loc, fail_loc, time.time()))
        t.daemon = True
        t.start()
        return (202, json.dumps({"InferenceId": iid}).encode(), "application/json",
                [("X-Amzn-SageMaker-OutputLocation", out_loc),
                 ("X-Amzn-SageMaker-FailureLocation", fail_loc),
                 ("x-amzn-RequestId", str(uuid.uuid4()))])


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--port-file")
    p.add_argument("--region", default="us-east-1")
    p.add_argument("--access-key", default="AKIDKILNTEST")
    p.add_argument("--secret-key", default="kiln/test+secret/key")
    p.add_argument("--token", default=None, help="require this session token")
    p.add_argument("--endpoint-name", default="sd-async")
    p.add_argument("--worker", choices=["a1111", "jumpstart"], default="a1111")
    p.add_argument("--buckets", default="kiln-in,kiln-out",
                   help="buckets that exist (comma-separated)")
    p.add_argument("--output-bucket", default="kiln-out")
    p.add_argument("--s3-domain", default="s3.test.invalid",
                   help="virtual-hosted S3: Host BUCKET.S3_DOMAIN names the bucket")
    p.add_argument("--delay-ms", type=float, default=200.0,
                   help="from the invocation to the output object")
    p.add_argument("--put-delay-ms", type=float, default=0.0, help="each S3 PUT takes this")
    p.add_argument("--fail-rate", type=float, default=0.0)
    p.add_argument("--jpeg", action="store_true",
                   help="jumpstart: answer JPEG as JumpStart does (needs the vips command)")
    p.add_argument("--verbose", action="store_true")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    st = State(args)
    server = Server(("127.0.0.1", args.port), Handler)
    server.st = st
    port = server.server_address[1]
    if args.port_file:
        with open(args.port_file + ".tmp", "w") as f:
            f.write("%d\n" % port)
        os.replace(args.port_file + ".tmp", args.port_file)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    signal.signal(signal.SIGINT, lambda *a: stop.set())
    t = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
    t.start()
    sys.stdout.write("LISTENING 127.0.0.1:%d\n" % port)
    sys.stdout.flush()
    while not stop.wait(0.5):
        pass
    server.shutdown()
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
