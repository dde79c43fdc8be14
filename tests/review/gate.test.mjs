// The gate: with `review: {required: true}`, `kiln release` refuses while tokens are pending or
// rejected (naming them) and writes once every token is approved in the browser: a rejection
// and a bulk approval of the rest in one session, the rejected token approved in the next
// (kiln review holds the project's lock while it serves: release runs between the sessions).
import fs from 'node:fs';
import {T, states, owls, mustKiln, kiln, review, browser, open, press, shown, expect, expectEq, main}
	from './lib.mjs';

await main(async () => {
	const P = owls(T + '/owls');
	fs.appendFileSync(P + '/kiln.yaml', '\nreview: {required: true}\n');
	mustKiln(P, 'plan', '-q');
	mustKiln(P, 'render', '-q');
	mustKiln(P, 'qa', '-q');
	let r = kiln(P, 'release', '-q');
	expectEq('release before any review exits 1', r.status, 1);
	expect('it says tokens are pending review', /pending/.test(r.err), r.err);
	expect('it names token 1', /\b1\b/.test(r.err), r.err);
	expect('nothing written', !fs.existsSync(P + '/dist/metadata'), fs.existsSync(P + '/dist') ? fs.readdirSync(P + '/dist') : []);

	let srv = await review(P);
	const b = await browser();
	let pg = await open(await b.createBrowserContext(), srv.url);
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
	await pg.browserContext().close();
	expectEq('kiln review stops on SIGTERM with 0', await srv.stop(), 0);

	r = kiln(P, 'release', '-q');
	expectEq('release with token 1 rejected exits 1', r.status, 1);
	expect('it names token 1 as rejected', /rejected/.test(r.err) && /\b1\b/.test(r.err), r.err);
	expect('and no approved one', !/\b(2|59|60)\b/.test(r.err.replace(/\d+ (of|tokens?)/g, '')), r.err);

	srv = await review(P);
	pg = await open(await b.createBrowserContext(), srv.url);
	expectEq('a new session opens on token 1', await shown(pg), 1);
	expectEq('token 1 shows as rejected', await pg.$eval('#l-status', (e) => e.textContent), 'rejected');
	await press(pg, 'p');
	expectEq('all 60 approved', [...states(P).values()].filter((x) => x.status === 'approved').length, 60);
	await pg.browserContext().close();
	expectEq('kiln review stops with 0', await srv.stop(), 0);
	r = kiln(P, 'release', '-q');
	expectEq('release with every token approved exits 0', r.status, 0);
	expect('it wrote dist/', fs.existsSync(P + '/dist/images/1.png'), r.err);
});
