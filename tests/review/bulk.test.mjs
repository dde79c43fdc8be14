// A bulk decision by keys: filter (F, status and a trait, Enter), B, the confirmation names how
// many tokens match, Enter applies; the live rarity panel (T) shows the skew; one Backspace takes
// the whole group back, the next the single decision made before it. The catalog follows.
import {T, states, owls, mustKiln, ls, review, browser, open, press, type, shown, expect, expectEq, main}
	from './lib.mjs';

await main(async () => {
	const P = owls(T + '/owls');
	mustKiln(P, 'plan', '-q');
	mustKiln(P, 'render', '-q');
	const items = ls(P);
	const caps = items.filter((t) => t.traits.Hat === 'Cap').map((t) => t.id);
	expect('the example has caps', caps.length > 3, caps);
	const srv = await review(P);
	const b = await browser();
	const pg = await open(await b.createBrowserContext(), srv.url);

	// filter: status pending, Hat:Cap
	await press(pg, 'f');
	await press(pg, 'p');	/* the status list: "pending" */
	expectEq('status pending chosen by typing', await pg.$eval('#f-status', (e) => e.value), 'pending');
	await press(pg, 'Tab');
	await type(pg, 'Hat:Cap');
	await press(pg, 'Enter');
	expectEq('the filter counts the caps', await pg.$eval('#f-count', (e) => e.textContent), `${caps.length} match`);
	expectEq('the loupe shows the first cap', await shown(pg), caps[0]);
	expect('the position names the filter', (await pg.$eval('#l-pos', (e) => e.textContent)).includes('Hat:Cap'));

	// one single decision first
	await press(pg, 'p');
	expectEq('P approves the first cap and shows the second', await shown(pg), caps[1]);

	// B: the confirmation, reject, Enter
	await press(pg, 'b');
	expect('B opens the confirmation', await pg.$eval('#d-bulk', (d) => d.open));
	await press(pg, 'r');
	expectEq('"r" chooses reject', await pg.$eval('#d-bulk-action', (e) => e.value), 'reject');
	const what = await pg.$eval('#d-bulk-what', (e) => e.textContent);
	expect('the confirmation counts the tokens the server will decide', what.includes(`all ${caps.length - 1} tokens`), what);
	expect('and names the filter', what.includes('status pending, Hat:Cap'), what);
	await press(pg, 'Enter');
	expect('Enter applies and closes', !(await pg.$eval('#d-bulk', (d) => d.open)));
	let rv = states(P);
	expectEq('the first cap stays approved', rv.get(caps[0]).status, 'approved');
	expectEq('every other cap is rejected', caps.slice(1).map((id) => rv.get(id).status),
		caps.slice(1).map(() => 'rejected'));
	expectEq('nothing else changed', items.filter((t) => !caps.includes(t.id) && rv.get(t.id).status !== 'pending').length, 0);
	expect('the toast says how many', (await pg.$eval('#toast', (e) => e.textContent)).includes(`${caps.length - 1} tokens`));

	// the live rarity panel: Hat Cap is skewed by the rejections
	await press(pg, 't');
	await pg.waitForSelector('tr[data-value="Hat:Cap"]');
	const cap = await pg.$eval('tr[data-value="Hat:Cap"]', (r) => ({skew: r.classList.contains('skew'),
		cells: [...r.cells].slice(1, 5).map((c) => Number(c.textContent))}));
	expectEq('rarity: Cap planned/approved/rejected/pending', cap.cells, [caps.length, 1, caps.length - 1, 0]);
	expect('rarity: Cap is marked skewed', cap.skew);
	expect('rarity: Halo is not', !(await pg.$eval('tr[data-value="Hat:Halo"]', (r) => r.classList.contains('skew'))));

	// one undo takes the whole group back, and the panel follows
	await press(pg, 'Backspace');
	rv = states(P);
	expectEq('Backspace: every other cap pending again', caps.slice(1).map((id) => rv.get(id).status),
		caps.slice(1).map(() => 'pending'));
	expectEq('the single approval before it stays', rv.get(caps[0]).status, 'approved');
	await pg.waitForFunction(() => !document.querySelector('tr[data-value="Hat:Cap"]').classList.contains('skew'), {timeout: 5000})
		.then(() => expect('rarity: the skew is gone after the undo', true), () => expect('rarity: the skew is gone after the undo', false));
	await press(pg, 'Backspace');
	rv = states(P);
	expectEq('the next Backspace undoes the single approval', rv.get(caps[0]).status, 'pending');
	await press(pg, 'Backspace');
	expect('a third has nothing left to undo', (await pg.$eval('#toast', (e) => e.textContent)).includes('Nothing'));
	const group = [...states(P).values()].filter((x) => x.status !== 'pending');
	expectEq('all pending at the end', group.length, 0);
});
