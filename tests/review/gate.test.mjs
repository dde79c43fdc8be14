// The gate: with `review: {required: true}`, `kiln release` refuses while tokens are pending or
// rejected (naming them) and writes once every token is approved in the browser (a rejection,
// a bulk approval of the rest, then the rejected token approved by its key).
import fs from 'node:fs';
import {T, states, owls, mustKiln, kiln, ls, review, browser, open, press, shown, expect, expectEq, main}
	from './lib.mjs';

await main(async () => {
	const P = owls(T + '/owls');
	fs.appendFileSync(P + '/kiln.yaml', '\nreview: {required: true}\n');
	mustKiln(P, 'plan', '-q');
	mustKiln(P, 'render', '-q');
	let r = kiln(P, 'release', '-q');
	expectEq('release before any review exits 1', r.status, 1);
	expect('it names pending tokens', /pending/.test(r.err) && /\b1\b/.test(r.err), r.err);
	expect('nothing written', !fs.existsSync(P + '/dist/metadata'), fs.existsSync(P + '/dist') ? fs.readdirSync(P + '/dist') : []);

	const srv = await review(P);
	const b = await browser();
	const pg = await open(await b.createBrowserContext(), srv.url);
	expect('the header says release needs approval', (await pg.$eval('#progress', (e) => e.textContent)).includes('release needs'));
	await press(pg, 'x');
	expectEq('X rejects 1, shows 2', await shown(pg), 2);
	// approve everything still pending: F, "p" (pending), Enter, B, "a" (approve), Enter
	await press(pg, 'f');
	await press(pg, 'p');
	await press(pg, 'Enter');
	expectEq('59 pending', await pg.$eval('#f-count', (e) => e.textContent), '59 match');
	await press(pg, 'b');
	await press(pg, 'a');
	expectEq('"a" chooses approve', await pg.$eval('#d-bulk-action', (e) => e.value), 'approve');
	await press(pg, 'Enter');
	r = kiln(P, 'release', '-q');
	expectEq('release with token 1 rejected exits 1', r.status, 1);
	expect('it names token 1 as rejected', /rejected/.test(r.err) && /\b1\b/.test(r.err), r.err);
	expect('and not the approved ones', !/\b59\b/.test(r.err), r.err);

	// clear the filter (F, Escape... the Clear button by Tab would do; the status list back to any)
	await press(pg, 'f');
	await press(pg, 'Home');	/* "any", the first status */
	await press(pg, 'Enter');
	expectEq('60 tokens again', await pg.$eval('#f-count', (e) => e.textContent), '60 match');
	await press(pg, 'Home');
	expectEq('Home shows 1', await shown(pg), 1);
	await press(pg, 'p');
	const rv = [...states(P).values()].map((x) => x.status);
	expectEq('all 60 approved', rv.filter((s) => s === 'approved').length, 60);
	r = kiln(P, 'release', '-q');
	expectEq('release with every token approved exits 0', r.status, 0);
	expect('it wrote dist/', fs.existsSync(P + '/dist/images/1.png'), r.err);
});
