#!/usr/bin/env python3
"""Checks a kiln release's dist/portfolio/ as an outsider would, with nothing from kiln:
the log's hash chain and canonical form, its RFC 6962 root against the checkpoint, every
inclusion proof, the checkpoint's key id, and the SPDX 3.0.1 document's types and required
fields (AI and Dataset profiles, trainedOn). usage: check_portfolio.py DIST; prints what fails."""
import base64, hashlib, json, os, sys

dist = sys.argv[1]
pf = os.path.join(dist, "portfolio")
bad = []
H = lambda b: hashlib.sha256(b).digest()

lines = open(os.path.join(pf, "log/entries.jsonl"), "rb").read().split(b"\n")
assert lines[-1] == b"", "entries.jsonl ends with a newline"
lines = lines[:-1]
prev = "0" * 64
for i, l in enumerate(lines):
    e = json.loads(l)
    if json.dumps(e, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode() != l \
            and b"." not in l:  # floats: Python prints them its own way
        bad.append("entry %d is not canonical JSON" % i)
    if e["prev"] != prev:
        bad.append("entry %d: prev %s, the line before hashes to %s" % (i, e["prev"], prev))
    if e["seq"] != i:
        bad.append("entry %d: seq %d" % (i, e["seq"]))
    prev = hashlib.sha256(l).hexdigest()

leaves = [H(b"\0" + l) for l in lines]
def mth(l):
    if not l: return H(b"")
    if len(l) == 1: return l[0]
    k = 1
    while k * 2 < len(l): k *= 2
    return H(b"\1" + mth(l[:k]) + mth(l[k:]))
root = mth(leaves)

note = open(os.path.join(pf, "log/checkpoint"), "rb").read().decode()
body, sigs = note.split("\n\n", 1)
origin, size, b64root = body.split("\n")
if int(size) != len(lines): bad.append("checkpoint size %s, log %d" % (size, len(lines)))
if base64.b64decode(b64root) != root: bad.append("checkpoint root is not the log's RFC 6962 root")
pj = json.load(open(os.path.join(pf, "portfolio.json")))
name, kid, key = pj["keys"]["note_vkey"].split("+", 2)
sigline = [s for s in sigs.split("\n") if s.startswith("\u2014 " + name + " ")]
if not sigline: bad.append("no signature line by " + name)
else:
    raw = base64.b64decode(sigline[0].split(" ")[2])
    if raw[:4].hex() != kid: bad.append("key id %s != %s" % (raw[:4].hex(), kid))
    want = hashlib.sha256(name.encode() + b"\n" + base64.b64decode(key)).hexdigest()[:8]
    if want != kid: bad.append("vkey id is not SHA-256(name\\n 0x01 key)[:4]")

def verify(leaf, m, n, path, root):
    fn, sn, r = m, n - 1, leaf
    for p in path:
        if sn == 0: return False
        if fn & 1 or fn == sn:
            r = H(b"\1" + p + r)
            if not fn & 1:
                while fn and not fn & 1: fn >>= 1; sn >>= 1
        else:
            r = H(b"\1" + r + p)
        fn >>= 1; sn >>= 1
    return sn == 0 and r == root
proofs = os.listdir(os.path.join(pf, "log/proofs"))
for f in proofs:
    p = json.load(open(os.path.join(pf, "log/proofs", f)))
    m = p["log_index"]
    if m < 0 or not verify(leaves[m], m, len(lines), [bytes.fromhex(h) for h in p["hashes"]], root):
        bad.append("proof %s does not lead to the root" % f)
    if p["entry"].encode() != lines[m]: bad.append("proof %s: entry is not line %d" % (f, m))
    if p["root_hash"] != root.hex(): bad.append("proof %s: root_hash" % f)
if len(proofs) != len(pj["tokens"]): bad.append("%d proofs for %d tokens" % (len(proofs), len(pj["tokens"])))

# SPDX 3.0.1: types and the fields the model makes required
doc = json.load(open(os.path.join(pf, "sbom.spdx.json")))
if doc.get("@context") != "https://spdx.org/rdf/3.0.1/spdx-context.jsonld": bad.append("@context")
g = doc["@graph"]
ids = {e.get("spdxId") for e in g}
req = {"CreationInfo": ["@id", "specVersion", "created", "createdBy"],
       "SpdxDocument": ["spdxId", "creationInfo", "rootElement", "element", "profileConformance"],
       "software_Package": ["spdxId", "creationInfo", "name"],
       "ai_AIPackage": ["spdxId", "creationInfo", "name", "suppliedBy", "software_downloadLocation",
                        "software_packageVersion", "software_primaryPurpose", "releaseTime"],
       "dataset_DatasetPackage": ["spdxId", "creationInfo", "name", "dataset_datasetType", "originatedBy",
                                  "software_downloadLocation", "software_primaryPurpose", "releaseTime",
                                  "builtTime"],
       "Relationship": ["spdxId", "creationInfo", "from", "relationshipType", "to"],
       "simplelicensing_LicenseExpression": ["spdxId", "creationInfo", "simplelicensing_licenseExpression"],
       "Organization": ["spdxId", "creationInfo", "name"]}
for e in g:
    t = e.get("type")
    if t not in req: bad.append("unknown SPDX type %s" % t); continue
    for k in req[t]:
        if k not in e: bad.append("%s %s lacks %s" % (t, e.get("spdxId"), k))
    if t == "CreationInfo" and e["specVersion"] != "3.0.1": bad.append("specVersion")
    if t == "Relationship":
        for x in [e["from"]] + e["to"]:
            if x not in ids: bad.append("relationship to unknown element %s" % x)
for t in ("ai_AIPackage", "dataset_DatasetPackage"):
    for e in g:
        if e["type"] != t: continue
        rels = [r["relationshipType"] for r in g if r["type"] == "Relationship" and r["from"] == e["spdxId"]]
        for need in ("hasDeclaredLicense", "hasConcludedLicense"):
            if rels.count(need) != 1: bad.append("%s %s: %d %s" % (t, e["name"], rels.count(need), need))
want_trained = int(os.environ.get("WANT_TRAINED_ON", "0"))
got = sum(1 for e in g if e["type"] == "Relationship" and e["relationshipType"] == "trainedOn")
if got != want_trained: bad.append("%d trainedOn relationships, expected %d" % (got, want_trained))
for b in bad:
    print("FAIL", b)
print("checked %d entries, %d proofs, %d SPDX elements" % (len(lines), len(proofs), len(g)))
sys.exit(1 if bad else 0)
