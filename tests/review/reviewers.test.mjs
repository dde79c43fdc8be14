// Two reviewers in two browser contexts (kiln review --add-reviewer): each signs in with their own
// link, their decisions are logged under their names, a token they disagree on shows in both
// pages' conflicts queue (K), and the filter by reviewer finds each one's tokens.
import {T, states, owls, mustKiln, kiln, ls, reviewLog, review, browser, open, press, type, shown, expect, expectEq, main}
	from './lib.mjs';

await main(async () => {
	const P = owls(T + '/owls');
	mustKiln(P, 'plan', '-q');
	mustKiln(P, 'render', '-q');
	const links = {};
	for (const name of ['alice', 'bob']) {
		const r = kiln(P, 'review', '--add-reviewer', name);
		expectEq(`--add-reviewer ${name} exits 0`, r.status, 0);
		const m = /(https?:\/\/\S*\?token=([0-9a-zA-Z_-]+))/.exec(r.out);
		expect(`--add-reviewer ${name} prints a link with a token`, m, r.out);
		links[name] = m ? m[2] : '';
	}
	expect('two different tokens', links.alice && links.alice !== links.bob);
	const srv = await review(P);
	const b = await browser();
	const A = await open(await b.createBrowserContext(), `${srv.base}/?token=${links.alice}`);
	const B = await open(await b.createBrowserContext(), `${srv.base}/?token=${links.bob}`);
	expectEq('alice is signed in as alice', await A.$eval('#who', (e) => e.textContent), 'reviewer alice');
	expectEq('bob is signed in as bob', await B.$eval('#who', (e) => e.textContent), 'reviewer bob');

	// alice approves 1 and 2; bob rejects 1 and approves 2; at the same time
	await Promise.all([(async () => {
		await press(A, 'p');
		await press(A, 'p');
	})(), (async () => {
		await press(B, 'x');
		await press(B, 'p');
	})()]);
	expectEq('alice is on 3', await shown(A), 3);
	expectEq('bob is on 3', await shown(B), 3);
	const log = reviewLog(P);
	const by = (who) => log.filter((d) => d.reviewer === who).map((d) => `${d.item}:${d.action}`).sort();
	expectEq('the log has both of alice\'s decisions', log.filter((d) => d.reviewer === 'alice').length, 2);
	expectEq('the log has both of bob\'s decisions', log.filter((d) => d.reviewer === 'bob').length, 2);
	const rv = states(P);
	expectEq('token 2: both reviewers', (rv.get(2).reviewers || []).slice().sort(), ['alice', 'bob']);

	// K: the conflicts queue lists token 1 in both pages, not token 2
	for (const [who, pg] of [['alice', A], ['bob', B]]) {
		await press(pg, 'k');
		await pg.waitForSelector('#k-table tr[data-id]', {timeout: 5000}).catch(() => {});
		const ids = await pg.$$eval('#k-table tr[data-id]', (r) => r.map((x) => Number(x.dataset.id)));
		expectEq(`${who}'s conflicts queue`, ids, [1]);
		const txt = await pg.$eval('#k-table', (e) => e.textContent);
		expect(`${who} sees both decisions`, txt.includes('alice: approve') && txt.includes('bob: reject'), txt);
		await press(pg, 'Enter');
		expectEq(`${who}: Enter opens token 1`, await shown(pg), 1);
		expect(`${who}: the loupe's log names both`, (await pg.$eval('#l-log', (e) => e.textContent)).includes('bob: reject'));
	}
	expectEq('the conflict count shows in the header', await A.$eval('#nconflicts', (e) => e.textContent), '1');

	// the reviewer filter: bob's tokens
	await press(A, 'Escape');
	await press(A, 'f');
	await press(A, 'Tab');
	await press(A, 'Tab');
	expectEq('Tab reaches the reviewer field', await A.evaluate(() => document.activeElement.id), 'f-reviewer');
	await type(A, 'bob');
	await press(A, 'Enter');
	expectEq('bob decided on 2 tokens', await A.$eval('#f-count', (e) => e.textContent), '2 match');
	const kout = kiln(P, 'status');
	expect('kiln status counts the conflict', /conflict/i.test(kout.out + kout.err), kout.out);
});
