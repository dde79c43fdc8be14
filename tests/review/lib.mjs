// Shared by the browser tests of kiln review (tests/review/*.test.mjs): a scratch folder, the
// kiln command, `kiln review` started and stopped, Debian's chromium driven by puppeteer-core
// (no browser is downloaded), and checks counted like tests/cli/lib.sh ("N passed, N failed").
import puppeteer from 'puppeteer-core';
import {spawn, spawnSync} from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';

export const KILN = process.env.KILN;
export const SRC = process.env.KILN_SRC;
if (!KILN || !SRC) {
	console.error('set KILN to the kiln binary and KILN_SRC to the source tree');
	process.exit(2);
}
const name = path.basename(process.argv[1]).replace(/\.test\.mjs$|\.mjs$/, '');
export const T = path.join(process.env.KILN_TMP || '/tmp', `review.${name}.${process.pid}`);
fs.rmSync(T, {recursive: true, force: true});
fs.mkdirSync(T, {recursive: true});

let checks = 0, failures = 0;
export function ok() {
	checks++;
}
export function fail(msg) {
	console.log('FAIL: ' + msg);
	checks++;
	failures++;
}
export function expect(what, cond, detail) {
	if (cond)
		ok();
	else
		fail(what + (detail !== undefined ? ': ' + (typeof detail === 'string' ? detail : JSON.stringify(detail)) : ''));
	return !!cond;
}
export function expectEq(what, got, want) {
	const g = JSON.stringify(got), w = JSON.stringify(want);
	if (g === w)
		ok();
	else
		fail(`${what}: got ${g}, expected ${w}`);
	return g === w;
}

const cleanups = [];
export function atExit(fn) {
	cleanups.push(fn);
}
/* set once the test body is over: servers stop while pages may still be open, and a page's
 * poll (GET /api/changes every 2 s) that meets a stopped server is not the test's failure */
let closing = false;
async function cleanup() {
	closing = true;
	while (cleanups.length) {
		try {
			await cleanups.pop()();
		} catch (e) {
			/* best effort */
		}
	}
}
export async function finish() {
	await cleanup();
	console.log(`${checks - failures} passed, ${failures} failed`);
	if (failures === 0 && !process.env.KILN_KEEP)
		fs.rmSync(T, {recursive: true, force: true});
	process.exit(failures === 0 ? 0 : 1);
}
/* run the test body; an exception is one failure, then the usual closing line */
export async function main(body) {
	const timer = setTimeout(() => {
		fail('the test took more than 560 s');
		finish();
	}, 560000);
	try {
		await body();
	} catch (e) {
		fail('exception: ' + (e && e.stack ? e.stack : e));
	}
	clearTimeout(timer);
	await finish();
}

/* kiln -C dir args...: {status, out, err} */
export function kiln(dir, ...args) {
	const r = spawnSync(KILN, ['-C', dir, ...args], {encoding: 'utf8', maxBuffer: 256 << 20});
	return {status: r.status, out: r.stdout, err: r.stderr};
}
export function mustKiln(dir, ...args) {
	const r = kiln(dir, ...args);
	if (r.status !== 0)
		throw new Error(`kiln ${args.join(' ')} exited ${r.status}: ${r.err}${r.out}`.slice(0, 2000));
	return r;
}

/* a copy of examples/owls in dir */
export function owls(dir) {
	fs.rmSync(dir, {recursive: true, force: true});
	fs.mkdirSync(dir, {recursive: true});
	for (const f of ['kiln.yaml', 'layers', 'legendaries'])
		fs.cpSync(path.join(SRC, 'examples/owls', f), path.join(dir, f), {recursive: true});
	return dir;
}

/* `kiln ls --json`: one object per token */
export function ls(dir) {
	return mustKiln(dir, 'ls', '--json').out.split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

/* sqlite3 -json on the project's catalog */
export function sql(dir, q) {
	const r = spawnSync('sqlite3', ['-json', path.join(dir, '.kiln/catalog.db'), q], {encoding: 'utf8'});
	if (r.status !== 0)
		throw new Error(`sqlite3: ${r.stderr}`);
	return r.stdout.trim() ? JSON.parse(r.stdout) : [];
}

/* `kiln review` on dir: resolves to {url, base, token, proc, stop()} once its first stdout line
 * (review: URL) is out */
export function review(dir, ...args) {
	const proc = spawn(KILN, ['-C', dir, 'review', ...args], {stdio: ['ignore', 'pipe', 'pipe']});
	let err = '';
	proc.stderr.on('data', (d) => {
		err += d;
	});
	const stop = async () => {
		if (proc.exitCode !== null || proc.signalCode !== null)
			return proc.exitCode;
		const done = new Promise((res) => proc.once('exit', (code) => res(code)));
		proc.kill('SIGTERM');
		const t = setTimeout(() => proc.kill('SIGKILL'), 10000);
		const code = await done;
		clearTimeout(t);
		return code;
	};
	atExit(stop);
	return new Promise((resolve, reject) => {
		const rl = readline.createInterface({input: proc.stdout});
		const t = setTimeout(() => reject(new Error('kiln review printed no URL in 30 s: ' + err)), 30000);
		rl.once('line', (line) => {
			clearTimeout(t);
			const m = /^review: (https?:\/\/[^/\s]+)\/\?token=(\S+)$/.exec(line);
			if (!m)
				return reject(new Error(`kiln review's first line is not "review: URL": ${line} ${err}`));
			resolve({url: `${m[1]}/?token=${m[2]}`, base: m[1], token: m[2], proc, stop,
				stderr: () => err});
		});
		proc.once('exit', (code) => reject(new Error(`kiln review exited ${code}: ${err}`)));
	});
}

/* Debian's chromium, headless, 1280x800 */
export async function browser() {
	const args = ['--disable-gpu', '--window-size=1280,800', '--disable-dev-shm-usage'];
	if (process.getuid && process.getuid() === 0)
		args.push('--no-sandbox');
	const b = await puppeteer.launch({
		executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
		headless: true,
		args,
		defaultViewport: {width: 1280, height: 800},
	});
	atExit(() => b.close());
	return b;
}

/* a page of a browser context, signed in by the review URL, with the app ready; every page error
 * and failed request is a test failure */
export async function open(ctx, url, opts) {
	const page = await ctx.newPage();
	page.on('pageerror', (e) => closing || fail('page error: ' + e.message));
	/* a resource the app asks for and does not get is a failure, unless the test says it expects
	 * such answers (page.allow, a RegExp) */
	page.allow = opts && opts.allow;
	page.requests = [];	/* the path of every request the page made, in order */
	page.on('request', (r) => page.requests.push(new URL(r.url()).pathname));
	page.on('console', (m) => {
		if (!closing && m.type() === 'error' && !(page.allow && page.allow.test(m.text())))
			fail('console error: ' + m.text());
	});
	await page.goto(url, {waitUntil: 'load'});
	await page.waitForFunction(() => document.body.dataset.ready === '1', {timeout: 20000});
	await idle(page);
	return page;
}

/* wait until no API call is in flight and the page settled */
export async function idle(page) {
	await page.waitForFunction(() => document.body.dataset.busy === '0', {timeout: 20000});
	await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => setTimeout(r, 30))));
	await page.waitForFunction(() => document.body.dataset.busy === '0', {timeout: 20000});
}

/* press a key (as puppeteer names it) and wait for the page to settle */
export async function press(page, key, opts) {
	await page.keyboard.press(key, opts);
	await idle(page);
}

export async function type(page, text) {
	await page.keyboard.type(text);
	await idle(page);
}

/* the token the loupe shows */
export async function shown(page) {
	return page.evaluate(() => Number(document.body.dataset.token));
}

/* GET on the server with a bearer token, as a script would: {status, json} */
export async function get(base, token, p) {
	const r = await fetch(base + p, {headers: {Authorization: 'Bearer ' + token}});
	let json = null;
	try {
		json = await r.json();
	} catch (e) {
		json = null;
	}
	return {status: r.status, json, headers: r.headers};
}

/* `kiln review --log --json`: the decisions, oldest first (one JSON object a line, or one
 * array); checked against the catalog's review_log table read with sqlite3 */
export function reviewLog(dir) {
	const rows = sql(dir, 'SELECT id, at, reviewer, item_id, action, candidate, image, note, group_id, undoes FROM review_log ORDER BY id');
	const r = kiln(dir, 'review', '--log', '--json');
	if (r.status !== 0) {
		fail('kiln review --log --json: ' + r.err.trim());
		return rows;
	}
	const out = r.out.trim();
	let log = [];
	if (out.startsWith('['))
		log = JSON.parse(out);
	else if (out) {
		log = out.split('\n').filter(Boolean).map((l) => JSON.parse(l));
		if (log.length === 1 && Array.isArray(log[0].decisions))
			log = log[0].decisions;
	}
	expectEq('kiln review --log --json has every row of review_log', log.length, rows.length);
	return log;
}

/* the review state of every token, by id: `kiln ls --json`'s "review" */
export function states(dir) {
	const items = ls(dir);
	if (items.length && !items[0].review) {
		fail('kiln ls --json has no "review"; read review_state instead');
		const rs = new Map(sql(dir, 'SELECT item_id, status, candidate, note, reviewers FROM review_state')
			.map((x) => [x.item_id, {status: x.status, candidate: x.candidate, note: x.note, reviewers: JSON.parse(x.reviewers)}]));
		return new Map(items.map((t) => [t.id, Object.assign({image: t.image}, rs.get(t.id) || {status: 'pending', reviewers: []})]));
	}
	return new Map(items.map((t) => [t.id, Object.assign({image: t.image}, t.review)]));
}

/* the SD test server (tests/sdserver), as tests/cli/ai_common.inc starts it: resolves to its URL */
export function sdServer(...args) {
	const proc = spawn('/usr/bin/python3', [path.join(SRC, 'tests/sdserver/sd_test_server.py'), '--port', '0', ...args],
		{stdio: ['ignore', 'pipe', 'pipe']});
	atExit(() => proc.kill());
	return new Promise((resolve, reject) => {
		const rl = readline.createInterface({input: proc.stdout});
		const t = setTimeout(() => reject(new Error('the SD test server did not start')), 20000);
		rl.on('line', (line) => {
			const m = /^LISTENING (\S+)/.exec(line);
			if (m) {
				clearTimeout(t);
				resolve('http://' + m[1]);
			}
		});
	});
}

/* a copy of examples/ai-owls pointed at the test server at url, with K candidates an item */
export function aiOwls(dir, url, k) {
	fs.rmSync(dir, {recursive: true, force: true});
	fs.cpSync(path.join(SRC, 'examples/ai-owls'), dir, {recursive: true});
	const y = path.join(dir, 'kiln.yaml');
	let s = fs.readFileSync(y, 'utf8');
	s = s.replace('http://127.0.0.1:7860', url).replace(' auth_env: KILN_GPU_AUTH,', '')
		.replace('timeout: 300', 'timeout: 10').replace(/candidates: 1 /, `candidates: ${k} `);
	fs.writeFileSync(y, s);
	return dir;
}

/* a layered project of n tokens with 32x32 images (tests/review/bigproject.py) */
export function bigProject(dir, n) {
	const r = spawnSync('/usr/bin/python3', [path.join(SRC, 'tests/review/bigproject.py'), dir, String(n)], {encoding: 'utf8'});
	if (r.status !== 0)
		throw new Error('bigproject.py: ' + r.stderr);
	return dir;
}
