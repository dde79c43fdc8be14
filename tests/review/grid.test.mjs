// The grid (G) with a 10,000-token project: only the rows in view are in the DOM while it
// scrolls from top to bottom, End reaches token 10,000 fetching only the pages it shows, arrows
// and P work in the grid, Enter opens the loupe on the selected token.
import {T, states, bigProject, mustKiln, ls, review, browser, open, press, shown, idle, expect, expectEq, main}
	from './lib.mjs';

const N = 10000;
await main(async () => {
	const P = bigProject(T + '/big', N);
	mustKiln(P, 'plan', '-q');
	mustKiln(P, 'render', '-q');
	const srv = await review(P);
	const b = await browser();
	const pg = await open(await b.createBrowserContext(), srv.url);
	const pages = [];
	pg.on('request', (r) => {
		const u = new URL(r.url());
		if (u.pathname === '/api/tokens' && !u.searchParams.get('status'))
			pages.push(Number(u.searchParams.get('offset')));
	});
	await press(pg, 'g');
	expectEq('G shows the grid', await pg.evaluate(() => document.body.dataset.view), 'grid');
	const count = () => pg.evaluate(() => ({cells: document.querySelectorAll('.cell').length,
		nodes: document.getElementsByTagName('*').length,
		first: Number(document.body.dataset.gridFirst), last: Number(document.body.dataset.gridLast),
		cols: Math.floor(document.getElementById('g-scroll').clientWidth / 168),
		rows: Math.ceil(document.getElementById('g-scroll').clientHeight / 188)}));
	const c0 = await count();
	const bound = (c0.rows + 3) * c0.cols;
	expect('at the top, only the visible rows are in the DOM', c0.cells > 0 && c0.cells <= bound, c0);
	expectEq('the scroll height holds every row', await pg.$eval('#g-space', (e) => e.offsetHeight),
		Math.ceil(N / c0.cols) * 188);

	// scroll to the end in 40 steps, as a wheel would, checking the DOM at every step
	const H = await pg.$eval('#g-scroll', (e) => e.scrollHeight - e.clientHeight);
	let maxCells = 0, maxNodes = 0, blank = 0;
	const t0 = Date.now();
	for (let k = 1; k <= 40; k++) {
		await pg.$eval('#g-scroll', (e, y) => { e.scrollTop = y; }, Math.round((H * k) / 40));
		await pg.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
		const c = await count();
		maxCells = Math.max(maxCells, c.cells);
		maxNodes = Math.max(maxNodes, c.nodes);
		if (c.cells === 0)
			blank++;
	}
	const ms = Date.now() - t0;
	await idle(pg);
	expect('while scrolling, never more than the visible rows + 3 in the DOM', maxCells <= bound, {maxCells, bound});
	expect('the whole page stays under 700 elements', maxNodes < 700, maxNodes);
	expectEq('no step showed an empty grid', blank, 0);
	const last = await pg.$$eval('.cell', (cs) => cs.map((c) => c.querySelector('.id').textContent));
	expect('the last token is in view at the bottom', last.includes('#' + N), last.slice(-5));
	const loaded = await pg.$$eval('.cell', (cs) => cs.filter((c) => c.querySelector('.id').textContent !== '…').length);
	expectEq('every cell in view has its token', loaded, await pg.$$eval('.cell', (cs) => cs.length));
	console.log(`scrolled ${N} tokens in 40 steps: ${ms} ms, at most ${maxCells} cells and ${maxNodes} elements`);

	// a continuous scroll, 120 px a frame for 240 frames, as a trackpad would: the frame gaps are
	// printed (a figure, not a check: the machine's load decides them)
	const gaps = await pg.$eval('#g-scroll', (e) => new Promise((res) => {
		const ts = [];
		e.scrollTop = 0;
		const f = (t) => {
			ts.push(t);
			e.scrollTop += 120;
			if (ts.length < 240)
				requestAnimationFrame(f);
			else
				res(ts.slice(1).map((x, i) => x - ts[i]).sort((a, b) => a - b));
		};
		requestAnimationFrame(f);
	}));
	console.log(`continuous scroll: frame gap p50 ${gaps[gaps.length >> 1].toFixed(1)} ms, ` +
		`p95 ${gaps[Math.floor(gaps.length * 0.95)].toFixed(1)} ms, max ${gaps[gaps.length - 1].toFixed(1)} ms`);
	expect('the DOM stayed bounded during the continuous scroll', (await count()).cells <= bound);

	// keys: Home, End, arrows, P in the grid, Enter opens the loupe
	pages.length = 0;
	await press(pg, 'Home');
	await press(pg, 'End');
	expectEq('End selects token 10000', await pg.$eval('.cell.sel .id', (e) => e.textContent), '#' + N);
	await press(pg, 'ArrowUp');
	expectEq('↑ goes one row up', await pg.$eval('.cell.sel .id', (e) => e.textContent), '#' + (N - c0.cols));
	await press(pg, 'ArrowLeft');
	await press(pg, 'x');
	expectEq('X in the grid marks the cell', await pg.$eval(`.cell[aria-label="Token ${N - c0.cols - 1}, rejected"]`, (e) => e.className.includes('rejected')), true);
	expectEq('and moves to the next', await pg.$eval('.cell.sel .id', (e) => e.textContent), '#' + (N - c0.cols));
	await press(pg, 'Enter');
	expectEq('Enter opens the loupe on it', await shown(pg), N - c0.cols);
	expect('Home/End fetched no page twice', new Set(pages).size === pages.length, pages);
	const rv = states(P).get(N - c0.cols - 1);
	expectEq('the catalog has the grid\'s rejection', rv.status, 'rejected');
});
