// The page follows outside changes without a reload (GET /api/changes, polled): another
// reviewer's decision (a script's, by its bearer token) shows on the token the loupe is on, and
// a `kiln render` run while the page is open brings the token's new candidates (it was sent back
// for regeneration) into the loupe and the grid; the reviewer stays where they were.
import {T, mustKiln, review, browser, open, press, shown, get, sdServer, aiOwls, expect, expectEq, main}
	from './lib.mjs';

/* POST as a script would (bearer token, no CSRF header needed) */
async function post(base, token, p, body) {
	const r = await fetch(base + p, {method: 'POST', body: JSON.stringify(body),
		headers: {Authorization: 'Bearer ' + token, 'Content-Type': 'application/json'}});
	return {status: r.status, json: await r.json().catch(() => null)};
}

await main(async () => {
	const url = await sdServer('--protocol', 'a1111');
	const P = aiOwls(T + '/ai', url, 2);
	mustKiln(P, 'plan', '-q');
	mustKiln(P, 'render', '-q');
	const bot = /token=(\S+)/.exec(mustKiln(P, 'review', '--add-reviewer', 'bot').out)[1];
	const srv = await review(P);
	const b = await browser();
	const pg = await open(await b.createBrowserContext(), srv.url);
	await pg.evaluate(() => { window.kilnNotReloaded = true; });
	await press(pg, 'ArrowRight');
	expectEq('the loupe is on token 2', await shown(pg), 2);
	expectEq('token 2 has two candidates', await pg.$$eval('#l-strip button', (x) => x.length), 2);
	const v0 = (await get(srv.base, srv.token, '/api/changes')).json;
	expect('GET /api/changes gives a version', Number.isInteger(v0 && v0.version), v0);
	const same = (await get(srv.base, srv.token, '/api/changes?since=' + v0.version)).json;
	expectEq('nothing changed since it', same.changed, false);
	expectEq('a bad since is refused', (await get(srv.base, srv.token, '/api/changes?since=x')).status, 400);

	// another reviewer sends token 2 back: the page shows it on its own
	const r = await post(srv.base, bot, '/api/tokens/2/decision', {action: 'regenerate', note: 'sharper'});
	expectEq('the bot\'s decision', r.status, 200);
	const moved = (await get(srv.base, srv.token, '/api/changes?since=' + v0.version)).json;
	expect('the version moved', moved.changed && moved.version > v0.version, moved);
	await pg.waitForFunction(() => document.querySelector('#l-status').textContent === 'regenerate', {timeout: 15000})
		.then(() => expect('the loupe shows the other reviewer\'s decision', true),
			() => expect('the loupe shows the other reviewer\'s decision', false));

	// a render while the page is open: the new candidates come into the loupe
	mustKiln(P, 'render', '-q');
	await pg.waitForFunction(() => document.querySelectorAll('#l-strip button').length === 4, {timeout: 15000})
		.then(() => expect('the render\'s two new candidates appear without a reload', true),
			() => expect('the render\'s two new candidates appear without a reload', false));
	expectEq('token 2 is pending again', await pg.$eval('#l-status', (e) => e.textContent), 'pending');
	expectEq('the reviewer is still on token 2', await shown(pg), 2);
	expectEq('the page was not reloaded', await pg.evaluate(() => window.kilnNotReloaded === true), true);
	const d2 = (await get(srv.base, srv.token, '/api/tokens/2')).json;
	expectEq('the API has the four candidates too', (d2.candidates || []).length, 4);

	// the grid: another decision shows on its cell, the selection stays
	await press(pg, 'g');
	const before = await pg.$eval('#g-scroll .cell.sel', (c) => c.getAttribute('aria-label'));
	expect('the grid selects token 2', /Token 2\b/.test(before), before);
	await post(srv.base, bot, '/api/tokens/3/decision', {action: 'reject'});
	await pg.waitForFunction(() => [...document.querySelectorAll('#g-scroll .cell')]
		.some((c) => c.getAttribute('aria-label') === 'Token 3, rejected'), {timeout: 15000})
		.then(() => expect('the grid shows token 3 rejected by the bot', true),
			() => expect('the grid shows token 3 rejected by the bot', false));
	expectEq('the selection stays on token 2', await pg.$eval('#g-scroll .cell.sel', (c) => c.getAttribute('aria-label')),
		'Token 2, pending');
	// and the page's own decisions still work after the catch-up
	await press(pg, 'p');
	expectEq('P on token 2 answers', (await get(srv.base, srv.token, '/api/tokens/2')).json.status, 'approved');
	await pg.browserContext().close();	/* before the server: the page polls it */
	expectEq('kiln review stops with 0', await srv.stop(), 0);
});
