// The oracle for kiln's portfolio attestations: every dist/portfolio/attestations/*.sigstore.json
// is read by @sigstore/bundle and verified by @sigstore/verify with the studio's public key as
// the only trust material (found by the bundle's publicKey hint; no transparency log, no
// timestamps: the portfolio's own signed log plays that part). Then each in-toto Statement's
// subjects are checked against the released files' SHA-256.
// usage: node verify_bundles.js DIST   (prints "ok N", exit 1 naming the first failure)
'use strict';
const fs = require('fs');
const path = require('path');
const crypto = require('crypto');
const { bundleFromJSON } = require('@sigstore/bundle');
const { Verifier, toSignedEntity, toTrustMaterial } = require('@sigstore/verify');

const dist = process.argv[2];
const pf = path.join(dist, 'portfolio');
const pem = fs.readFileSync(path.join(pf, 'keys', 'signing-ed25519.pub'));
const key = crypto.createPublicKey(pem);
const raw = key.export({ format: 'der', type: 'spki' }).subarray(-32);
const hint = crypto.createHash('sha256').update(raw).digest('hex');
const trust = toTrustMaterial(
  { mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1', tlogs: [],
    certificateAuthorities: [], ctlogs: [], timestampAuthorities: [] },
  (h) => {
    if (h !== hint) throw new Error(`unknown key hint ${h}`);
    return { publicKey: key, validFor: () => true };
  });
const verifier = new Verifier(trust, { tlogThreshold: 0, ctlogThreshold: 0, timestampThreshold: 0 });
const dir = path.join(pf, 'attestations');
let n = 0;
for (const f of fs.readdirSync(dir).sort()) {
  const where = `attestations/${f}`;
  try {
    const bundle = bundleFromJSON(JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')));
    verifier.verify(toSignedEntity(bundle));
    const st = JSON.parse(Buffer.from(bundle.content.dsseEnvelope.payload).toString('utf8'));
    if (st._type !== 'https://in-toto.io/Statement/v1') throw new Error('not an in-toto Statement v1');
    if (st.predicateType !== 'https://slsa.dev/provenance/v1') throw new Error('not SLSA provenance v1');
    for (const s of st.subject) {
      const got = crypto.createHash('sha256').update(fs.readFileSync(path.join(dist, s.name))).digest('hex');
      if (got !== s.digest.sha256) throw new Error(`subject ${s.name}: ${got} != ${s.digest.sha256}`);
    }
  } catch (e) {
    console.log(`FAIL ${where}: ${e.message}`);
    process.exit(1);
  }
  n++;
}
console.log(`ok ${n}`);
