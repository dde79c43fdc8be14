// The security rules from the browser side: without the token link the page gets 401 and shows
// how to sign in; with it, the token leaves the address bar and the session cookie is HttpOnly
// (document.cookie does not show it) and SameSite=Strict; a POST without the CSRF header or with
// another content type is refused (403), a huge body gets 413; another origin cannot read the API
// (no CORS); a rebound host name gets 403; an inline script is blocked by the CSP; unknown
// images and ids get 404.
import http from 'node:http';
import {T, states, owls, mustKiln, ls, review, browser, open, expect, expectEq, main, atExit}
	from './lib.mjs';
import puppeteer from 'puppeteer-core';

await main(async () => {
	const P = owls(T + '/owls');
	mustKiln(P, 'plan', '-q');
	mustKiln(P, 'render', '-q');
	const srv = await review(P);
	const b = await browser();

	// no token: 401, and the page says how to sign in
	const anon = await (await b.createBrowserContext()).newPage();
	const resp = await anon.goto(srv.base + '/', {waitUntil: 'load'});
	expectEq('GET / without the token: 401', resp.status(), 401);
	const st = await anon.evaluate(async () => (await fetch('/api/session')).status);
	expectEq('GET /api/session without the cookie: 401', st, 401);
	const bad = await anon.goto(srv.base + '/?token=' + '0'.repeat(64), {waitUntil: 'load'});
	expectEq('a wrong token: 401', bad.status(), 401);

	// with the token
	const ctx = await b.createBrowserContext();
	const pg = await open(ctx, srv.url, {allow: /Failed to load resource|Refused to execute inline script|violates the following Content Security Policy/});
	expectEq('the token left the address bar', await pg.evaluate(() => location.search), '');
	const cookies = await pg.cookies();
	const c = cookies.find((x) => x.name === 'kiln_session');
	expect('a kiln_session cookie is set', c, cookies);
	if (c) {
		expect('it is HttpOnly', c.httpOnly);
		expectEq('it is SameSite=Strict', c.sameSite, 'Strict');
		expectEq('its path is /', c.path, '/');
	}
	expect('document.cookie does not show it', !(await pg.evaluate(() => document.cookie)).includes('kiln_session'));
	const sec = await pg.evaluate(async () => {
		const csrf = (await (await fetch('/api/session')).json()).csrf;
		const post = async (headers, body) => (await fetch('/api/tokens/1/decision', {method: 'POST', headers,
			body: body || JSON.stringify({action: 'approve'})})).status;
		return {
			noCsrf: await post({'Content-Type': 'application/json'}),
			wrongCsrf: await post({'Content-Type': 'application/json', 'X-Kiln-CSRF': 'x' + csrf}),
			text: await post({'Content-Type': 'text/plain', 'X-Kiln-CSRF': csrf}),
			form: await post({'Content-Type': 'application/x-www-form-urlencoded', 'X-Kiln-CSRF': csrf}, 'action=approve'),
			huge: await post({'Content-Type': 'application/json', 'X-Kiln-CSRF': csrf},
				JSON.stringify({action: 'approve', note: 'x'.repeat(100 * 1024)})),
			badJson: await post({'Content-Type': 'application/json', 'X-Kiln-CSRF': csrf}, '{"action": '),
			badAction: await post({'Content-Type': 'application/json', 'X-Kiln-CSRF': csrf}, '{"action": "maybe"}'),
			noToken: (await fetch('/api/tokens/999999')).status,
			noImage: (await fetch('/img/' + 'ab'.repeat(32))).status,
			noThumb: (await fetch('/thumb/' + 'ab'.repeat(32))).status,
			path: (await fetch('/img/..%2f..%2fkiln.yaml')).status,
		};
	});
	expectEq('POST without X-Kiln-CSRF: 403', sec.noCsrf, 403);
	expectEq('POST with a wrong X-Kiln-CSRF: 403', sec.wrongCsrf, 403);
	expectEq('POST as text/plain: 403', sec.text, 403);
	expectEq('POST as a form: 403', sec.form, 403);
	expectEq('a 100 KiB body: 413', sec.huge, 413);
	expectEq('bad JSON: 400', sec.badJson, 400);
	expectEq('an unknown action: 400', sec.badAction, 400);
	expectEq('an unknown id: 404', sec.noToken, 404);
	expectEq('an image the catalog does not know: 404', sec.noImage, 404);
	expectEq('a thumbnail the catalog does not know: 404', sec.noThumb, 404);
	expect('no path from the request', sec.path === 404 || sec.path === 400, sec.path);
	expectEq('none of the refused POSTs decided anything', [...states(P).values()].filter((x) => x.status !== 'pending').length, 0);

	// the CSP blocks an inline script injected into the page
	const ran = await pg.evaluate(() => new Promise((res) => {
		const s = document.createElement('script');
		s.textContent = 'window.kilnPwned = 1';
		document.body.append(s);
		setTimeout(() => res(window.kilnPwned === 1), 100);
	}));
	expect('an inline script does not run (CSP)', !ran);
	const h = (await pg.goto(srv.base + '/', {waitUntil: 'load'})).headers();
	expect('CSP header', (h['content-security-policy'] || '').includes("default-src 'self'"), h);
	expectEq('X-Frame-Options', h['x-frame-options'], 'DENY');
	expectEq('nosniff', h['x-content-type-options'], 'nosniff');
	expect('no CORS header', !Object.keys(h).some((k) => k.startsWith('access-control-')), h);

	// another origin: a page on another port cannot read the API (no CORS), nor post a decision
	const evil = http.createServer((req, res) => {
		res.writeHead(200, {'Content-Type': 'text/html'});
		res.end('<!doctype html><title>evil</title>');
	});
	await new Promise((r) => evil.listen(0, '127.0.0.1', r));
	atExit(() => new Promise((r) => evil.close(r)));
	const ev = await ctx.newPage();
	await ev.goto(`http://127.0.0.1:${evil.address().port}/`);
	const cross = await ev.evaluate(async (base) => {
		const out = {};
		try {
			await (await fetch(base + '/api/session', {credentials: 'include'})).json();
			out.read = 'read';
		} catch (e) {
			out.read = 'blocked';
		}
		try {
			await fetch(base + '/api/tokens/2/decision', {method: 'POST', credentials: 'include', mode: 'no-cors',
				headers: {'Content-Type': 'text/plain'}, body: JSON.stringify({action: 'reject'})});
		} catch (e) {
			/* an opaque answer either way */
		}
		return out;
	}, srv.base);
	expectEq('another origin cannot read the API', cross.read, 'blocked');
	expectEq('nor decide (token 2 still pending)', states(P).get(2).status, 'pending');

	// DNS rebinding: the same server under another host name gets 403
	const args = ['--disable-gpu', `--host-resolver-rules=MAP rebind.test 127.0.0.1`];
	if (process.getuid && process.getuid() === 0)
		args.push('--no-sandbox');
	const b2 = await puppeteer.launch({executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true, args});
	atExit(() => b2.close());
	const rb = await b2.newPage();
	const port = new URL(srv.base).port;
	const rr = await rb.goto(`http://rebind.test:${port}/?token=${srv.token}`, {waitUntil: 'load'});
	expectEq('a page reached as rebind.test: 403', rr.status(), 403);
	const lh = await rb.goto(`http://localhost:${port}/?token=${srv.token}`, {waitUntil: 'load'});
	expect('as localhost it works', lh.status() === 200, lh.status());
});
