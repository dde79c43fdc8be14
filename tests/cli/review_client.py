"""Plain HTTP client for the review server's tests (tests/cli/review_*.sh): sessions by cookie
or bearer token, with the CSRF header, over http.client (nothing else installed)."""
import http.client
import json


class Client:
    def __init__(self, port, token=None, host=None):
        self.port = port
        self.token = token
        self.host = host or "127.0.0.1:%d" % port
        self.cookie = None
        self.csrf = None

    def raw(self, method, path, body=None, headers=None):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        h = {"Host": self.host}
        if self.cookie:
            h["Cookie"] = self.cookie
        h.update(headers or {})
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, dict((k.lower(), v) for k, v in r.getheaders()), data

    def login(self):
        st, h, _ = self.raw("GET", "/?token=" + self.token)
        assert st == 303, st
        self.cookie = h["set-cookie"].split(";")[0]
        self.csrf = self.get("/api/session")["csrf"]
        return h

    def get(self, path, want=200):
        st, _, data = self.raw("GET", path)
        assert st == want, (path, st, data[:300])
        return json.loads(data) if data and want != 304 else None

    def post(self, path, obj, want=200):
        st, _, data = self.raw("POST", path, json.dumps(obj),
                               {"Content-Type": "application/json", "X-Kiln-CSRF": self.csrf})
        assert st == want, (path, st, data[:300])
        return json.loads(data)
