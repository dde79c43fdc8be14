// Candidate picking on an AI project rendered against the SD test server with
// generate.candidates: 3: the loupe lists the AI parameters and the three candidates, C shows them
// side by side, 2 and 3 pick (and approve, and advance), 9 is refused; the catalog's image of the
// token is the picked candidate's. Then the regeneration loop: R with a note added to the prompt,
// `kiln render`, and the next session shows the three new candidates pending beside the old
// ones, the note in the prompt; 5 picks a new one.
import {T, states, mustKiln, type, ls, review, browser, open, press, shown, get, sdServer, aiOwls, expect, expectEq, main}
	from './lib.mjs';

await main(async () => {
	const url = await sdServer('--protocol', 'a1111');
	const P = aiOwls(T + '/ai', url, 3);
	mustKiln(P, 'plan', '-q');
	mustKiln(P, 'render', '-q');
	const srv = await review(P);
	const d1 = (await get(srv.base, srv.token, '/api/tokens/1')).json;
	expectEq('token 1 has three candidates', (d1.candidates || []).length, 3);
	const b = await browser();
	const pg = await open(await b.createBrowserContext(), srv.url);
	expectEq('the loupe opens on token 1', await shown(pg), 1);
	expectEq('the strip shows the three candidates', await pg.$$eval('#l-strip button', (x) => x.length), 3);
	const ai = Object.fromEntries(await pg.$$eval('#l-ai tr', (trs) => trs.map((t) => [t.cells[0].textContent, t.cells[1].textContent])));
	expect('the prompt is shown', (ai.prompt || '').startsWith('pixel art owl perched on a branch'), ai);
	expectEq('the sampler', ai.sampler, 'Euler a');
	expectEq('the steps', ai.steps, '20');
	expectEq('the cfg', ai.cfg, '7');
	expect('the checkpoint', (ai.checkpoint || '').includes('sd_xl_base_1.0'), ai);
	expect('the negative', (ai.negative || '').startsWith('blurry, text, watermark'), ai);
	expectEq('the seed, all 64 bits', ai.seed, String(d1.ai.seed));

	await press(pg, 'c');
	expectEq('C shows the candidates side by side', await pg.$$eval('#c-row figure', (x) => x.length), 3);
	const srcs = await pg.$$eval('#c-row img', (x) => x.map((i) => new URL(i.src).pathname));
	expectEq('each candidate\'s own image', srcs, d1.candidates.map((c) => '/img/' + c.image));
	await pg.waitForFunction(() => [...document.querySelectorAll('#c-row img')].every((i) => i.complete && i.naturalWidth === 512),
		{timeout: 10000}).then(() => expect('the three images load at 512 px', true), () => expect('the three images load at 512 px', false));
	await press(pg, '2');
	expectEq('2 picks and advances to token 2', await shown(pg), 2);
	expectEq('still side by side', await pg.evaluate(() => document.body.dataset.view), 'cands');
	const d2 = (await get(srv.base, srv.token, '/api/tokens/2')).json;
	await press(pg, '3');
	expectEq('3 picks and advances to token 3', await shown(pg), 3);
	await press(pg, '9');
	expectEq('9 is refused: no candidate 9', await shown(pg), 3);
	expect('the toast says why', (await pg.$eval('#toast', (e) => e.textContent)).includes('has 3 candidates'));

	const byId = states(P);
	expectEq('token 1 approved with candidate 2', [byId.get(1).status, byId.get(1).candidate], ['approved', 2]);
	expectEq('token 1\'s image is candidate 2\'s', byId.get(1).image, d1.candidates[1].image);
	expectEq('token 2 approved with candidate 3', [byId.get(2).status, byId.get(2).candidate], ['approved', 3]);
	expectEq('token 2\'s image is candidate 3\'s', byId.get(2).image, d2.candidates[2].image);
	expectEq('token 3 untouched', byId.get(3).status, 'pending');
	const again = (await get(srv.base, srv.token, '/api/tokens/1')).json;
	expectEq('the API marks candidate 2 picked', again.candidates.map((c) => c.picked), [false, true, false]);

	// back to token 1 in the loupe: its strip marks candidate 2
	await press(pg, 'l');
	await press(pg, 'Home');
	expectEq('Home shows token 1', await shown(pg), 1);
	expectEq('the loupe shows the picked image', await pg.$eval('#l-img', (i) => new URL(i.src).pathname), '/img/' + d1.candidates[1].image);
	expectEq('the strip marks candidate 2', await pg.$$eval('#l-strip button', (x) => x.map((b) => b.classList.contains('picked'))),
		[false, true, false]);

	// the regeneration loop: token 3 back with a note for the prompt
	await press(pg, 'ArrowRight');
	await press(pg, 'ArrowRight');
	expectEq('→ → shows token 3', await shown(pg), 3);
	await press(pg, 'r');
	await type(pg, 'wearing a scarf');
	await press(pg, 'Tab');
	await press(pg, ' ');
	await press(pg, 'Enter');
	expectEq('R advances to 4', await shown(pg), 4);
	expectEq('token 3 is to regenerate', states(P).get(3).status, 'regenerate');
	await pg.browserContext().close();
	expectEq('kiln review stops with 0', await srv.stop(), 0);
	mustKiln(P, 'render', '-q');
	const srv2 = await review(P);
	const pg2 = await open(await b.createBrowserContext(), srv2.url);
	await press(pg2, 'ArrowRight');
	await press(pg2, 'ArrowRight');
	expectEq('the next session: token 3', await shown(pg2), 3);
	expectEq('token 3 is pending again', await pg2.$eval('#l-status', (e) => e.textContent), 'pending');
	expectEq('its strip has the old and the new candidates', await pg2.$$eval('#l-strip button', (x) => x.length), 6);
	const ai3 = Object.fromEntries(await pg2.$$eval('#l-ai tr', (trs) => trs.map((t) => [t.cells[0].textContent, t.cells[1].textContent])));
	expect('the prompt has the note', (ai3.prompt || '').endsWith(', wearing a scarf'), ai3.prompt);
	await press(pg2, 'c');
	const caps = await pg2.$$eval('#c-row figcaption', (x) => x.map((f) => f.textContent));
	expectEq('side by side: six', caps.length, 6);
	expect('the new three say regeneration 1', caps.slice(3).every((c) => c.includes('regeneration 1')) &&
		caps.slice(0, 3).every((c) => !c.includes('regeneration')), caps);
	const d3 = (await get(srv2.base, srv2.token, '/api/tokens/3')).json;
	await press(pg2, '5');
	const s3 = states(P).get(3);
	expectEq('5 picks the second new candidate', [s3.status, s3.candidate], ['approved', 5]);
	expectEq('token 3\'s image is candidate 5\'s', s3.image, d3.candidates[4].image);
	expect('the old candidates stay in the store', d3.candidates.slice(0, 3).every((c) => c.image), d3.candidates);
});
