#!/usr/bin/python3
"""The SageMaker/S3 test server's own SigV4 check (sagemaker_server.verify) against every case
of the AWS Signature V4 test suite (tests/fixtures/aws-sig-v4-test-suite): each signed request
passes, and the same request with its signature or its secret changed is refused with the
error AWS gives. So the server that judges kiln is itself checked against AWS's data."""
import datetime
import os
import sys

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
import sagemaker_server as sm  # noqa: E402

SUITE = os.path.join(here, "..", "fixtures", "aws-sig-v4-test-suite")
KEY, SECRET = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
NOW = datetime.datetime(2015, 8, 30, 12, 36, tzinfo=datetime.timezone.utc).timestamp()


def parse(path, authz):
    text = open(path, "rb").read().decode("utf-8")
    head, _, body = text.partition("\n\n")
    lines = head.split("\n")
    method, _, rest = lines[0].partition(" ")
    target = rest.rsplit(" ", 1)[0]
    raw_path, _, query = target.partition("?")
    headers = []
    for l in lines[1:]:
        if l[:1] in (" ", "\t"):
            k, v = headers[-1]
            headers[-1] = (k, v + "," + l.strip())
        else:
            k, _, v = l.partition(":")
            headers.append((k, v))
    headers.append(("Authorization", authz))
    return method, raw_path, query, headers, body.encode()


def main():
    n = bad = 0
    for root, dirs, files in sorted(os.walk(SUITE)):
        name = os.path.basename(root)
        if name + ".req" not in files:
            continue
        n += 1
        authz = open(os.path.join(root, name + ".authz")).read().strip()
        m, p, q, h, b = parse(os.path.join(root, name + ".req"), authz)
        token = dict((k.lower(), v) for k, v in h).get("x-amz-security-token")
        keys = {KEY: (SECRET, token)}
        try:
            sm.verify(m, p, q, h, b, "service", keys, "us-east-1", NOW)
        except sm.SigError as e:
            print("FAIL %s: refused a good signature: %s %s" % (name, e.code, e.message))
            bad += 1
        # the same request under another secret, or with a signature changed: refused
        for what, k2, h2 in (
                ("secret", {KEY: ("not" + SECRET, token)}, h),
                ("signature", keys, h[:-1] + [("Authorization", authz[:-1] +
                                               ("0" if authz[-1] != "0" else "1"))])):
            try:
                sm.verify(m, p, q, h2, b, "service", k2, "us-east-1", NOW)
                print("FAIL %s: accepted a wrong %s" % (name, what))
                bad += 1
            except sm.SigError as e:
                if e.code != "InvalidSignatureException" or e.status != 403:
                    print("FAIL %s: wrong %s refused as %s %d" % (name, what, e.code, e.status))
                    bad += 1
    if n != 31:
        print("FAIL: %d cases found, the suite has 31" % n)
        bad += 1
    print("%d cases, %d failed" % (n, bad))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
