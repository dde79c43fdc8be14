// Screenshots of the loupe and the grid (PNG, 1280x800) after a few decisions on the example.
// `KILN_SCREENSHOTS=docs/commands/img` writes them where docs/commands/review.md shows them;
// otherwise into the scratch folder (the test then checks they were made).
import fs from 'node:fs';
import path from 'node:path';
import {T, owls, mustKiln, review, browser, open, press, type, expect, expectEq, main}
	from './lib.mjs';

await main(async () => {
	const out = process.env.KILN_SCREENSHOTS || T + '/img';
	fs.mkdirSync(out, {recursive: true});
	const P = owls(T + '/owls');
	mustKiln(P, 'plan', '-q');
	mustKiln(P, 'render', '-q');
	mustKiln(P, 'qa', '-q');
	const srv = await review(P);
	const b = await browser();
	const pg = await open(await b.createBrowserContext(), srv.url);
	for (const k of ['p', 'p', 'x', 'p', 'p', 'p'])
		await press(pg, k);
	await press(pg, 'n');
	await type(pg, 'the hat covers the eyes');
	await press(pg, 'Enter');
	for (const k of ['x', 'p', 'p', 'ArrowLeft', 'ArrowLeft', 'ArrowLeft'])
		await press(pg, k);
	expect('the loupe shows the note', (await pg.$eval('#l-note', (e) => e.textContent)).includes('the hat covers'));
	/* settled: the image, the header's counts, no toast */
	const settled = () => pg.waitForFunction(() => document.getElementById('toast').textContent === '' &&
		/7 approved · 2 rejected/.test(document.getElementById('progress').textContent), {timeout: 10000});
	await pg.waitForFunction(() => document.getElementById('l-img').complete);
	await settled();
	await pg.screenshot({path: path.join(out, 'review-loupe.png')});
	await press(pg, 'g');
	await pg.waitForFunction(() => [...document.querySelectorAll('.cell img')].every((i) => i.complete), {timeout: 10000});
	await settled();
	await pg.screenshot({path: path.join(out, 'review-grid.png')});
	for (const f of ['review-loupe.png', 'review-grid.png']) {
		const buf = fs.readFileSync(path.join(out, f));
		expectEq(`${f} is a PNG`, buf.subarray(1, 4).toString(), 'PNG');
		expectEq(`${f} is 1280x800`, [buf.readUInt32BE(16), buf.readUInt32BE(20)], [1280, 800]);
	}
	expect('written to ' + out, true);
});
