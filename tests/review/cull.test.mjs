// Keyboard culling of the example in chromium, keys only: the loupe shows the token's traits and
// image, P/X/U/N decide (R refused on a composed token: no prompt, the button disabled with why), the view advances after each decision, ←/→ move, the next
// tokens' data and images are fetched before they show, `?` shows the keys, keys typed in a
// text field decide nothing, Backspace and Ctrl+Z undo; then the catalog (kiln ls --json,
// the decision log) holds what was decided.
import {T, states, owls, mustKiln, ls, sql, reviewLog, review, browser, open, press, type, shown, idle, expect, expectEq, main}
	from './lib.mjs';

await main(async () => {
	const P = owls(T + '/owls');
	mustKiln(P, 'plan', '-q');
	mustKiln(P, 'render', '-q');
	const items = ls(P);
	const byId = new Map(items.map((t) => [t.id, t]));
	const srv = await review(P);
	const b = await browser();
	const ctx = await b.createBrowserContext();
	const pg = await open(await b.createBrowserContext(), srv.url);
	const requests = pg.requests;

	expectEq('the loupe opens on the first token', await shown(pg), 1);
	const traits = await pg.$$eval('#l-traits tr', (trs) => trs.map((t) => [t.cells[0].textContent, t.cells[1].textContent]));
	expectEq('the loupe lists token 1\'s traits', traits, Object.entries(byId.get(1).traits));
	await pg.waitForFunction(() => {
		const i = document.getElementById('l-img');
		return i.complete && i.naturalWidth > 0;
	}, {timeout: 10000});
	expectEq('the loupe image is token 1\'s', await pg.$eval('#l-img', (i) => new URL(i.src).pathname), '/img/' + byId.get(1).image);
	expectEq('the loupe image is 256 px wide', await pg.$eval('#l-img', (i) => i.naturalWidth), 256);
	expect('the rank is shown', (await pg.$eval('#l-rank', (e) => e.textContent)).includes(`rarity rank ${byId.get(1).rarity_rank} of 60`),
		await pg.$eval('#l-rank', (e) => e.textContent));

	// prefetch: the next tokens' data and images were asked for before any key
	await idle(pg);
	for (const id of [2, 3, 4, 5]) {
		expect(`token ${id}'s data prefetched`, requests.includes('/api/tokens/' + id));
		expect(`token ${id}'s image prefetched`, requests.includes('/img/' + byId.get(id).image));
	}
	// and showing token 2 then asks for neither again
	const before = requests.length;

	await press(pg, 'p');
	expectEq('P approves and advances to 2', await shown(pg), 2);
	expect('token 2 came from the prefetch', !requests.slice(before).some((u) => u === '/api/tokens/2' || u === '/img/' + byId.get(2).image),
		requests.slice(before));
	await press(pg, 'x');
	expectEq('X rejects and advances to 3', await shown(pg), 3);
	// a composed token: rendering it again gives the same image, so R is refused, saying why
	expect('the Regenerate button is disabled, its tooltip says why',
		await pg.$eval('.actions button[data-act="regenerate"]', (b) => b.disabled && /composed from its layers/.test(b.title)));
	await press(pg, 'r');
	expect('R opens no prompt on a composed token', !(await pg.$eval('#d-note', (d) => d.open)));
	await pg.waitForFunction(() => /#3 cannot be regenerated: it is composed/.test(document.getElementById('toast').textContent),
		{timeout: 10000});
	expectEq('R decides nothing and stays on 3', await shown(pg), 3);
	await press(pg, 'x');
	expectEq('X on 3 advances to 4', await shown(pg), 4);
	await press(pg, 'ArrowRight');
	expectEq('→ moves to 5', await shown(pg), 5);
	await press(pg, 'ArrowLeft');
	expectEq('← moves back to 4', await shown(pg), 4);
	await press(pg, 'x');
	expectEq('X on 4 advances to 5', await shown(pg), 5);
	await press(pg, 'ArrowLeft');
	await press(pg, 'u');
	expectEq('U on 4 advances to 5', await shown(pg), 5);
	await press(pg, 'n');
	expect('N opens the note prompt', await pg.$eval('#d-note', (d) => d.open));
	expect('the note prompt has no "add to the prompt" box for N', await pg.$eval('#d-note-prompt-row', (e) => e.hidden));
	await type(pg, 'nice hat');
	await press(pg, 'Enter');
	expectEq('N keeps the view on 5', await shown(pg), 5);
	expect('the note shows in the loupe', (await pg.$eval('#l-note', (e) => e.textContent)).includes('nice hat'));

	// accessible: every button has a name, the focus is visible, the page fits 1280x800
	const unnamed = await pg.$$eval('button', (bs) => bs.filter((b) => !(b.getAttribute('aria-label') || b.textContent).trim()).length);
	expectEq('every button has a label', unnamed, 0);
	await pg.focus('#b-loupe');
	await press(pg, 'Tab');
	const focus = await pg.evaluate(() => {
		const e = document.activeElement;
		const cs = getComputedStyle(e);
		return {id: e.id, outline: cs.outlineStyle, width: parseFloat(cs.outlineWidth)};
	});
	expect('Tab moves the focus to the next button, with a visible outline', focus.id === 'b-grid' && focus.outline !== 'none' && focus.width >= 2, focus);
	await pg.evaluate(() => document.activeElement.blur());
	const fits = await pg.evaluate(() => ({w: document.documentElement.scrollWidth, h: document.documentElement.scrollHeight,
		info: document.querySelector('.info').getBoundingClientRect().right}));
	expect('nothing overflows 1280x800', fits.w <= 1280 && fits.h <= 800 && fits.info <= 1280, fits);

	// ? shows the keys; Escape closes them
	await press(pg, '?');
	expect('? opens the shortcut sheet', await pg.$eval('#d-help', (d) => d.open));
	expect('the sheet names P', (await pg.$eval('#d-help', (d) => d.textContent)).includes('approve'));
	await press(pg, 'Escape');
	expect('Escape closes it', !(await pg.$eval('#d-help', (d) => d.open)));

	// keys typed into a text field decide nothing
	await press(pg, 'f');
	expectEq('F focuses the filter', await pg.evaluate(() => document.activeElement.id), 'f-status');
	await press(pg, 'Tab');
	expectEq('Tab reaches the traits field', await pg.evaluate(() => document.activeElement.id), 'f-trait');
	await type(pg, 'pxu');
	await press(pg, 'Backspace');
	expectEq('the field got the keys', await pg.$eval('#f-trait', (e) => e.value), 'px');
	await press(pg, 'Escape');
	expectEq('Escape leaves the field', await pg.evaluate(() => document.activeElement.id), '');
	await pg.$eval('#f-trait', (e) => { e.value = ''; });
	expectEq('still on 5', await shown(pg), 5);

	let rv = states(P);
	expectEq('1 approved in the catalog', rv.get(1).status, 'approved');
	expectEq('2 rejected in the catalog', rv.get(2).status, 'rejected');
	expectEq('3 rejected (R was refused)', rv.get(3).status, 'rejected');
	expectEq('no regenerate decision in the log', sql(P, "SELECT count(*) AS n FROM review_log WHERE action = 'regenerate'"),
		[{n: 0}]);
	expectEq('4 back to pending', rv.get(4).status, 'pending');
	expectEq('5\'s note', rv.get(5).note, 'nice hat');
	expectEq('N records a note, not a decision', sql(P, 'SELECT action FROM review_log WHERE item_id = 5'), [{action: 'note'}]);
	expectEq('6 untouched', rv.get(6).status, 'pending');
	expect('the reviewer is named', JSON.stringify(rv.get(1).reviewers).includes('owner') || rv.get(1).reviewers.length === 1,
		rv.get(1).reviewers);
	const log = reviewLog(P);
	expectEq('the log has the six decisions', log.length, 6);
	expect('each names the image it was about', log.every((d) => d.image === byId.get(d.item)?.image),
		log.slice(0, 2));

	// undo: the note on 5, then (Ctrl+Z) U on 4, then X on 4: back on 4, rejected again then pending
	await press(pg, 'Backspace');
	expectEq('Backspace undoes the note on 5', await shown(pg), 5);
	rv = states(P);
	expect('5 has no note', !rv.get(5).note, rv.get(5));
	await pg.keyboard.down('Control');
	await pg.keyboard.press('z');
	await pg.keyboard.up('Control');
	await idle(pg);
	expectEq('Ctrl+Z undoes U on 4 and shows 4', await shown(pg), 4);
	rv = states(P);
	expectEq('4 is rejected again', rv.get(4).status, 'rejected');
	expectEq('the loupe says so', await pg.$eval('#l-status', (e) => e.textContent), 'rejected');
	await press(pg, 'Backspace');
	await press(pg, 'Backspace');
	expectEq('two more undos show 3', await shown(pg), 3);
	rv = states(P);
	expectEq('4 pending after its undo', rv.get(4).status, 'pending');
	expectEq('3 pending after its undo', rv.get(3).status, 'pending');
	expectEq('2 still rejected', rv.get(2).status, 'rejected');
	expect('the log keeps the undone decisions (append-only)',
		(await pg.$$eval('#l-log li', (l) => l.map((x) => x.textContent))).some((t) => t.includes('undone')));
	await ctx.close();
});
