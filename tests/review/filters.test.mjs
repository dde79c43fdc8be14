// The filters by keys: QA findings (any, none, a check id; the loupe lists the finding), the
// rarity rank range, trait values (OR within a layer, AND across layers), and the filter's
// tokens in the grid are exactly those the catalog says.
import fs from 'node:fs';
import {T, owls, mustKiln, kiln, ls, sql, review, browser, open, press, type, shown, expect, expectEq, main}
	from './lib.mjs';

await main(async () => {
	const P = owls(T + '/owls');
	mustKiln(P, 'plan', '-q');
	mustKiln(P, 'render', '-q');
	const items = ls(P);
	// a file-size limit at the median: about half the tokens get an image.file_size finding
	const sizes = items.map((t) => fs.statSync(`${P}/.kiln/store/${t.image.slice(0, 2)}/${t.image}`).size).sort((a, b) => a - b);
	const limit = sizes[sizes.length >> 1];
	expectEq('kiln qa finds the large files (exit 1)', kiln(P, 'qa', '-q', '--max-size', String(limit)).status, 1);
	const flagged = sql(P, "SELECT DISTINCT item_id FROM qa_findings WHERE check_id = 'image.file_size' ORDER BY item_id")
		.map((r) => r.item_id);
	expect('some tokens but not all have a finding', flagged.length > 5 && flagged.length < 55, flagged.length);
	const srv = await review(P);
	const b = await browser();
	const pg = await open(await b.createBrowserContext(), srv.url);
	const gridIds = async () => {
		await press(pg, 'g');
		const ids = await pg.$$eval('.cell', (cs) => cs.map((c) => Number(c.querySelector('.id').textContent.slice(1))));
		await press(pg, 'l');
		return ids.sort((x, y) => x - y);
	};
	const setField = async (id, text) => {
		await press(pg, 'Escape');	/* out of any field, or 'f' would be typed into it */
		await press(pg, 'f');
		for (const f of ['f-trait', 'f-reviewer', 'f-qa', 'f-rank-min', 'f-rank-max']) {
			await press(pg, 'Tab');
			if (f === id)
				break;
		}
		expectEq(`Tab reaches ${id}`, await pg.evaluate(() => document.activeElement.id), id);
		await pg.keyboard.down('Control');
		await pg.keyboard.press('a');
		await pg.keyboard.up('Control');
		await press(pg, 'Backspace');
		if (text)
			await type(pg, text);
	};

	await setField('f-qa', 'any');
	await press(pg, 'Enter');
	expectEq('qa any: the flagged tokens', await pg.$eval('#f-count', (e) => e.textContent), `${flagged.length} match`);
	expectEq('the loupe shows the first flagged token', await shown(pg), flagged[0]);
	expect('with its finding', (await pg.$eval('#l-qa', (e) => e.textContent)).includes('image.file_size'));
	expectEq('the grid holds exactly them', await gridIds(), flagged);
	await setField('f-qa', 'none');
	await press(pg, 'Enter');
	expectEq('qa none: the others', await pg.$eval('#f-count', (e) => e.textContent), `${60 - flagged.length} match`);
	await setField('f-qa', 'image.file_size');
	await press(pg, 'Enter');
	expectEq('qa by check id', await pg.$eval('#f-count', (e) => e.textContent), `${flagged.length} match`);
	await setField('f-qa', '');
	await press(pg, 'Escape');

	await setField('f-rank-min', '5');
	await press(pg, 'Tab');
	await type(pg, '14');
	await press(pg, 'Enter');
	const ranked = items.filter((t) => t.rarity_rank >= 5 && t.rarity_rank <= 14).map((t) => t.id).sort((x, y) => x - y);
	expectEq('rank 5..14', await pg.$eval('#f-count', (e) => e.textContent), `${ranked.length} match`);
	expectEq('the grid holds exactly them', await gridIds(), ranked);
	await setField('f-rank-min', '');
	await press(pg, 'Tab');
	await press(pg, 'Backspace');
	await press(pg, 'Backspace');

	await setField('f-trait', 'Hat:Cap, Hat:Wizard');
	await press(pg, 'Enter');
	const capWiz = items.filter((t) => ['Cap', 'Wizard'].includes(t.traits.Hat)).map((t) => t.id);
	expectEq('two values of one layer: either', await gridIds(), capWiz);
	await setField('f-trait', 'Hat:Cap, Body:Brown');
	await press(pg, 'Enter');
	const capBrown = items.filter((t) => t.traits.Hat === 'Cap' && t.traits.Body === 'Brown').map((t) => t.id);
	expectEq('two layers: both', await gridIds(), capBrown);
	expect('the loupe names the filter', (await pg.$eval('#l-pos', (e) => e.textContent)).includes('Hat:Cap + Body:Brown'));
});
