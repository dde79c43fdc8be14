// Read a PNG's C2PA manifest with the c2pa-rs engine (npm @contentauth/c2pa-wasm) as a
// collector's tools would, with the studio's root certificate as the only trust anchor.
//
//   node oracle.mjs ROOT.pem FILE.png...
//
// Prints a line "FILE<TAB>JSON" for each file, the JSON {state, label, title, actions,
// provenance, failures}, where state is
// c2pa-rs' validation state (Invalid, Valid or Trusted) and failures the validation status
// codes it reported as failures. The .wasm is loaded from node_modules (initSync), never
// fetched.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { initSync, WasmReader } from '@contentauth/c2pa-wasm';

const [rootPem, ...files] = process.argv.slice(2);
if (!rootPem || !files.length) {
	console.error('usage: node oracle.mjs ROOT.pem FILE.png...');
	process.exit(2);
}
const require = createRequire(import.meta.url);
initSync({ module: readFileSync(require.resolve('@contentauth/c2pa-wasm/c2pa.wasm')) });

const settings = {
	trust: { trust_anchors: readFileSync(rootPem, 'utf8') },
	verify: { verify_trust: true },
};
for (const file of files) {
	let out;
	try {
		const reader = await WasmReader.fromBytes('image/png', new Uint8Array(readFileSync(file)),
			JSON.stringify(settings));
		const store = JSON.parse(reader.json());
		const m = store.manifests?.[store.active_manifest] ?? {};
		const failures = [];
		const vr = store.validation_results?.activeManifest;
		for (const f of vr?.failure ?? [])
			failures.push(f.code);
		for (const f of store.validation_status ?? [])
			if (!failures.includes(f.code))
				failures.push(f.code);
		const assertion = (label) => m.assertions?.find((a) => a.label === label)?.data;
		out = {
			state: store.validation_state,
			label: store.active_manifest,
			title: m.title,
			actions: (assertion('c2pa.actions.v2') ?? assertion('c2pa.actions'))?.actions
				?.map((a) => a.action + (a.digitalSourceType ? ' ' + a.digitalSourceType : '')
					+ (a.description ? ' "' + a.description + '"' : '')),
			provenance: assertion('dev.kiln.provenance'),
			failures,
		};
	} catch (err) {
		out = { state: 'Error', error: String(err?.message ?? err) };
	}
	console.log(file + '\t' + JSON.stringify(out));
}
