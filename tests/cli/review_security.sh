# kiln review against hostile requests (issue 13's security rules), with plain HTTP: no token,
# a wrong token, a wrong Host, no CSRF header, a wrong content type, huge bodies, ids and hashes
# that do not exist, paths that try to leave the store, methods it does not take; every answer
# carries CSP, X-Frame-Options and nosniff and never a CORS header; SIGTERM exits 0.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/review_common.inc"
owls "$T/p"
"$KILN" -C "$T/p" plan -q >/dev/null && "$KILN" -C "$T/p" render -q >/dev/null 2>&1
expect_eq "owls rendered" $? 0
start_review "$T/p"
expect_contains "the first line is the owner's URL" "$T/review.out" "review: http://127.0.0.1:"
expect_eq "a 256-bit token" "$(printf %s "$TOKEN" | wc -c)" 64
py_check security "$KILN_SRC/tests/cli" <<'PY'
import json, sys
sys.path.insert(0, sys.argv[3])
from review_client import Client
port, token = int(sys.argv[1]), sys.argv[2]
CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
       "frame-ancestors 'none'")
seen = []
def check_headers(h, what):
    for k in h:
        assert not k.startswith("access-control-"), (what, k)
    assert h.get("x-frame-options") == "DENY", (what, h)
    assert h.get("x-content-type-options") == "nosniff", (what, h)
    assert "content-security-policy" in h, (what, h)
    seen.append(what)
anon = Client(port)
# no token, no cookie: 401 everywhere (the page too), JSON error
for path in ["/", "/app.js", "/api/session", "/api/tokens", "/api/tokens/1", "/img/" + "a" * 64,
             "/thumb/" + "a" * 64, "/api/conflicts"]:
    st, h, data = anon.raw("GET", path, headers={"Origin": "http://evil.example"})
    assert st == 401, (path, st)
    assert "error" in json.loads(data), data
    check_headers(h, path)
st, _, _ = anon.raw("POST", "/api/undo", "{}", {"Content-Type": "application/json"})
assert st == 401, st
# a wrong token: 401, no cookie set
st, h, _ = anon.raw("GET", "/?token=" + "0" * 64)
assert st == 401 and "set-cookie" not in h, (st, h)
st, _, _ = anon.raw("GET", "/api/session", headers={"Authorization": "Bearer " + "0" * 64})
assert st == 401, st
# the owner's token: a session cookie, HttpOnly, SameSite=Strict, Path=/
c = Client(port, token)
h = c.login()
cookie = h["set-cookie"]
assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie, cookie
assert h["location"] == "/", h
check_headers(h, "login")
st, h, data = c.raw("GET", "/")
assert st == 200 and h["content-type"].startswith("text/html"), (st, h)
assert h["content-security-policy"] == CSP, h
etag = h["etag"]
st, _, _ = c.raw("GET", "/", headers={"If-None-Match": etag})
assert st == 304, st
s = c.get("/api/session")
assert s["reviewer"] == "owner" and len(s["csrf"]) == 64 and s["total"] == 60, s
# Host must be this server (DNS rebinding): 403, even with a valid session
for host in ["evil.example", "evil.example:%d" % port, "127.0.0.1:1", "localhost.evil:%d" % port]:
    st, h, _ = c.raw("GET", "/api/session", headers={"Host": host})
    assert st == 403, (host, st)
    check_headers(h, "host " + host)
st, _, _ = c.raw("GET", "/api/session", headers={"Host": "localhost:%d" % port})
assert st == 200, st
# state changes: CSRF header and JSON content type, else 403
body = json.dumps({"action": "approve"})
st, _, _ = c.raw("POST", "/api/tokens/1/decision", body, {"Content-Type": "application/json"})
assert st == 403, st
st, _, _ = c.raw("POST", "/api/tokens/1/decision", body,
                 {"Content-Type": "application/json", "X-Kiln-CSRF": "0" * 64})
assert st == 403, st
st, _, _ = c.raw("POST", "/api/tokens/1/decision", body,
                 {"Content-Type": "text/plain", "X-Kiln-CSRF": c.csrf})
assert st == 403, st
st, _, _ = c.raw("POST", "/api/tokens/1/decision", body,
                 {"Content-Type": "application/x-www-form-urlencoded", "X-Kiln-CSRF": c.csrf})
assert st == 403, st
# nothing was decided by the refused requests
assert c.get("/api/tokens/1")["decisions"] == [], "a refused POST decided"
# a bearer token (scripts): no CSRF, but still JSON only
b = Client(port)
st, _, _ = b.raw("POST", "/api/tokens/1/decision", body,
                 {"Content-Type": "application/json", "Authorization": "Bearer " + token})
assert st == 200, st
st, _, _ = b.raw("POST", "/api/tokens/1/decision", body,
                 {"Content-Type": "text/plain", "Authorization": "Bearer " + token})
assert st == 403, st
# bodies over 64 KiB: 413 (declared, and sent in chunks without a length)
big = json.dumps({"action": "approve", "note": "x" * 70000})
st, _, _ = c.raw("POST", "/api/tokens/1/decision", big,
                 {"Content-Type": "application/json", "X-Kiln-CSRF": c.csrf})
assert st == 413, st
def chunks():
    for _ in range(100):
        yield b"x" * 1024
import http.client
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
conn.putrequest("POST", "/api/undo", skip_host=True)
for k, v in [("Host", "127.0.0.1:%d" % port), ("Cookie", c.cookie), ("X-Kiln-CSRF", c.csrf),
             ("Content-Type", "application/json"), ("Transfer-Encoding", "chunked")]:
    conn.putheader(k, v)
conn.endheaders()
try:
    for ch in chunks():
        conn.send(b"%x\r\n%s\r\n" % (len(ch), ch))
    conn.send(b"0\r\n\r\n")
except (BrokenPipeError, ConnectionResetError):
    pass
r = conn.getresponse()
assert r.status == 413, r.status
# bad JSON and bad fields: 400
for bad in ["{", "[]", '{"action": "bless"}', '{"action": "pick"}', '{"action": "pick", "candidate": 2}',
            '{"action": "approve", "note": 5}', '{"action": "approve", "candidate": 1}']:
    st, _, data = c.raw("POST", "/api/tokens/1/decision", bad,
                        {"Content-Type": "application/json", "X-Kiln-CSRF": c.csrf})
    assert st == 400 and "error" in json.loads(data), (bad, st, data)
for q in ["status=maybe", "limit=0", "limit=10001", "trait=NoColon", "rank_min=-1", "bogus=1"]:
    st, _, _ = c.raw("GET", "/api/tokens?" + q)
    assert st == 400, (q, st)
# ids and hashes that do not exist: 404
for path in ["/api/tokens/999999", "/api/tokens/0", "/api/tokens/abc", "/api/nothing",
             "/img/" + "a" * 64, "/thumb/" + "b" * 64, "/img/../../etc/passwd",
             "/img/%2e%2e%2fcatalog.db", "/img/" + "A" * 64, "/nothing.html"]:
    st, h, _ = c.raw("GET", path)
    assert st == 404, (path, st)
    check_headers(h, path)
st, _, _ = c.raw("POST", "/api/tokens/999999/decision", body,
                 {"Content-Type": "application/json", "X-Kiln-CSRF": c.csrf})
assert st == 404, st
# methods: 405
for m, path in [("PUT", "/api/tokens/1/decision"), ("DELETE", "/api/tokens/1"),
                ("GET", "/api/undo"), ("GET", "/api/tokens/1/decision"), ("POST", "/api/tokens")]:
    hdr = {"Content-Type": "application/json", "X-Kiln-CSRF": c.csrf}
    st, _, _ = c.raw(m, path, "{}", hdr)
    assert st == 405, (m, path, st)
# an image the catalog knows: served as stored, immutable, with an ETag
img = c.get("/api/tokens/2")["image"]
st, h, data = c.raw("GET", "/img/" + img)
assert st == 200 and h["content-type"] == "image/png" and data[:4] == b"\x89PNG", (st, h)
assert "immutable" in h["cache-control"] and img in h["etag"], h
import hashlib
assert hashlib.sha256(data).hexdigest() == img
st, h, data = c.raw("GET", "/thumb/" + img)
assert st == 200 and h["content-type"] == "image/webp" and data[8:12] == b"WEBP", (st, h)
st, _, _ = c.raw("GET", "/thumb/" + img, headers={"If-None-Match": h["etag"]})
assert st == 304, st
print("ok", len(seen), "responses checked")
PY
stop_review
# the owner's token is kept (0600) and the same on the next run; without the file, a new one
expect_eq "the owner's token file is private" "$(stat -c %a "$T/p/.kiln/review-owner")" 600
old=$TOKEN
start_review "$T/p"
expect_eq "the same owner URL on the next run" "$TOKEN" "$old"
stop_review
rm "$T/p/.kiln/review-owner"
start_review "$T/p"
[ "$TOKEN" != "$old" ] && ok || fail "no new owner token without the file"
expect_eq "the old owner token is refused" "$(curl -s -o /dev/null -w %{http_code} "http://127.0.0.1:$PORT/?token=$old")" 401
expect_eq "the new one works" "$(curl -s -o /dev/null -w %{http_code} "$URL")" 303
stop_review
# listening elsewhere than loopback is warned about
start_review "$T/p" --listen 0.0.0.0:0
expect_contains "a warning for a non-loopback address" "$T/review.err" "not a loopback address"
stop_review
# HTTPS with --tls-cert/--tls-key: the same token exchange, a Secure cookie; plain HTTP fails
if openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/key.pem" -out "$T/cert.pem" -days 1 \
	-subj /CN=localhost >/dev/null 2>&1; then
	"$KILN" -C "$T/p" review --tls-cert "$T/cert.pem" --tls-key "$T/key.pem" >"$T/review.out" 2>"$T/review.err" &
	RPID=$!
	for _ in $(seq 100); do grep -q '^review: ' "$T/review.out" && break; sleep 0.1; done
	URL=$(sed -n 's/^review: //p' "$T/review.out")
	expect_eq "an https URL" "${URL%%://*}" https
	curl -sk -D "$T/tls.h" -o /dev/null "$URL"
	expect_contains "a Secure cookie over TLS" "$T/tls.h" "HttpOnly; SameSite=Strict; Path=/; Secure"
	curl -s -o /dev/null "http${URL#https}"
	[ $? != 0 ] && ok || fail "plain HTTP answered on the TLS port"
	stop_review
fi
"$KILN" -C "$T/p" review --tls-cert "$T/nothing.pem" --tls-key "$T/nothing.pem" >/dev/null 2>"$T/tls.err"
expect_eq "a missing certificate" $? 2
"$KILN" -C "$T/p" review --tls-cert "$T/p/kiln.yaml" --tls-key "$T/p/kiln.yaml" >/dev/null 2>"$T/tls2.err"
expect_eq "a certificate that is not PEM" $? 1
"$KILN" -C "$T/p" review --json >"$T/json.out" 2>/dev/null &
RPID=$!
for _ in $(seq 100); do [ -s "$T/json.out" ] && break; sleep 0.1; done
expect_eq "--json: an object with url" "$($PY -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["url"][:17])' "$T/json.out")" "http://127.0.0.1:"
stop_review
"$KILN" -C "$T/p" review --listen nowhere:80 >/dev/null 2>"$T/usage.err"
expect_eq "a bad --listen is a usage error" $? 2
finish
