/* kiln review: the culling page. Plain JS, no framework, nothing fetched but this server's own
 * API (docs/review-api.md) and images. The CSP forbids inline script and style, so every handler
 * is added here and every dynamic style is set through the CSSOM.
 *
 * The model: a list of tokens (the filter's result, fetched by pages of PAGE on demand), a
 * current index in it, a cache of token details (GET /api/tokens/{id}) and of preloaded images.
 * Decisions are sent in order through one queue: the view advances at once (optimistic) and
 * takes the server's answer when it comes; an error puts the old status back. */
'use strict';

const PAGE = 500;		/* tokens per GET /api/tokens page */
const PREFETCH = 4;		/* tokens ahead whose data and images are loaded before they show */
const DETAILS_KEPT = 96;	/* token details kept in memory */
const IMAGES_KEPT = 48;		/* preloaded Image objects kept */
const CELL_W = 168, CELL_H = 188;	/* grid cell incl. gap, px */
const ACTION_STATUS = {approve: 'approved', reject: 'rejected', pending: 'pending',
	regenerate: 'regenerate', pick: 'approved'};
const STATUS_ACTION = {approved: 'approve', rejected: 'reject', pending: 'pending',
	regenerate: 'regenerate'};

const $ = (id) => document.getElementById(id);

const S = {
	session: null,
	csrf: '',
	view: 'loupe',
	filter: {},
	list: null,
	index: 0,
	details: new Map(),	/* id -> Promise of the detail */
	images: new Map(),	/* url -> Image (kept so the browser keeps them decoded) */
	undo: [],		/* this page's decisions, newest last: {kind: 'one', id} | {kind: 'bulk'} */
	queue: Promise.resolve(),
	busy: 0,
	showSeq: 0,
	conflicts: [],
	conflictSel: 0,
	ownRows: 0,		/* review log rows this page's POSTs added since the last look at /api/changes */
};

/* ---- small helpers ---- */

function h(tag, attrs, ...kids) {
	const e = document.createElement(tag);
	for (const [k, v] of Object.entries(attrs || {})) {
		if (v === null || v === undefined || v === false)
			continue;
		if (k === 'class')
			e.className = v;
		else if (k === 'text')
			e.textContent = v;
		else if (k.startsWith('on'))
			e.addEventListener(k.slice(2), v);
		else
			e.setAttribute(k, v === true ? '' : v);
	}
	for (const c of kids)
		if (c !== null && c !== undefined)
			e.append(c instanceof Node ? c : String(c));
	return e;
}

function clear(e) {
	while (e.firstChild)
		e.firstChild.remove();
}

let toastTimer = 0;
function toast(msg, err) {
	const t = $('toast');
	t.textContent = msg;
	t.classList.toggle('err', !!err);
	clearTimeout(toastTimer);
	toastTimer = setTimeout(() => { t.textContent = ''; }, err ? 6000 : 2500);
}

function setBusy(d) {
	S.busy += d;
	document.body.dataset.busy = String(S.busy);
}

function fmtTime(at) {
	if (typeof at === 'number')
		at = new Date(at * (at < 1e12 ? 1000 : 1)).toISOString();
	return String(at).replace('T', ' ').replace(/\.\d+Z$|Z$/, '');
}

/* ---- the API ---- */

class HttpError extends Error {
	constructor(status, msg) {
		super(msg);
		this.status = status;
	}
}

async function api(method, path, body) {
	const opt = {method, headers: {}, credentials: 'same-origin', cache: 'no-store'};
	if (method !== 'GET') {
		opt.headers['Content-Type'] = 'application/json';
		opt.headers['X-Kiln-CSRF'] = S.csrf;
		opt.body = JSON.stringify(body || {});
	}
	setBusy(1);
	try {
		const r = await fetch(path, opt);
		let j = null;
		try {
			/* seeds are 64-bit: keep them as text, a JS number would round them */
			j = JSON.parse((await r.text()).replace(/("seed"\s*:\s*)(-?\d{16,})/g, '$1"$2"'));
		} catch (e) {
			j = null;
		}
		if (r.status === 401) {
			gate('Your session ended or the link is not valid: open the link that kiln review printed again.');
			throw new HttpError(401, (j && j.error) || 'not signed in');
		}
		if (!r.ok)
			throw new HttpError(r.status, (j && j.error) || `${method} ${path}: HTTP ${r.status}`);
		return j;
	} finally {
		setBusy(-1);
	}
}

/* POSTs go one after another, in the order the keys were pressed */
function enqueue(fn) {
	const p = S.queue.then(fn);
	S.queue = p.catch(() => {});
	return p;
}

function query(f, offset, limit) {
	const q = new URLSearchParams();
	if (f.status)
		q.set('status', f.status);
	for (const t of f.trait || [])
		q.append('trait', t);
	for (const k of ['reviewer', 'qa', 'rank_min', 'rank_max'])
		if (f[k] !== undefined && f[k] !== '')
			q.set(k, f[k]);
	q.set('offset', offset);
	q.set('limit', limit);
	return q.toString();
}

/* ---- token lists ---- */

/* the filter's tokens, fetched a page at a time */
class TokenList {
	constructor(filter) {
		this.filter = filter;
		this.total = -1;
		this.pages = new Map();	/* page number -> array, or a Promise while loading */
		this.onload = null;
	}
	page(p) {
		let v = this.pages.get(p);
		if (v)
			return v instanceof Promise ? v : Promise.resolve(v);
		v = api('GET', '/api/tokens?' + query(this.filter, p * PAGE, PAGE)).then((j) => {
			this.total = j.total;
			this.pages.set(p, j.tokens);
			if (this.onload)
				this.onload(p);
			return j.tokens;
		}, (e) => {
			this.pages.delete(p);
			throw e;
		});
		this.pages.set(p, v);
		return v;
	}
	/* the summary if its page is here, else null (and the page is asked for) */
	at(i) {
		if (i < 0 || (this.total >= 0 && i >= this.total))
			return null;
		const v = this.pages.get(Math.floor(i / PAGE));
		if (Array.isArray(v))
			return v[i % PAGE] || null;
		this.page(Math.floor(i / PAGE)).catch(() => {});
		return null;
	}
	async get(i) {
		if (i < 0 || (this.total >= 0 && i >= this.total))
			return null;
		const a = await this.page(Math.floor(i / PAGE));
		return a[i % PAGE] || null;
	}
	patch(i, p) {
		const t = this.at(i);
		if (t)
			Object.assign(t, p);
	}
	indexOf(id) {
		for (const [p, a] of this.pages)
			if (Array.isArray(a)) {
				const k = a.findIndex((t) => t.id === id);
				if (k >= 0)
					return p * PAGE + k;
			}
		return -1;
	}
	describe() {
		return describeFilter(this.filter);
	}
}

/* a fixed list of ids (the conflicts queue): summaries come from the details */
class IdList {
	constructor(ids, what) {
		this.items = ids.map((id) => ({id}));
		this.total = ids.length;
		this.what = what;
		this.onload = null;
	}
	at(i) {
		return this.items[i] || null;
	}
	async get(i) {
		return this.at(i);
	}
	patch(i, p) {
		if (this.items[i])
			Object.assign(this.items[i], p);
	}
	indexOf(id) {
		return this.items.findIndex((t) => t.id === id);
	}
	describe() {
		return this.what;
	}
}

function describeFilter(f) {
	const parts = [];
	if (f.status)
		parts.push('status ' + f.status);
	if (f.trait && f.trait.length)
		parts.push(f.trait.join(' + '));
	if (f.reviewer)
		parts.push('reviewer ' + f.reviewer);
	if (f.qa)
		parts.push('QA ' + f.qa);
	if (f.rank_min || f.rank_max)
		parts.push(`rank ${f.rank_min || 1}..${f.rank_max || ''}`);
	return parts.length ? parts.join(', ') : 'all tokens';
}

/* ---- details and prefetch ---- */

function detail(id, fresh) {
	if (!fresh && S.details.has(id))
		return S.details.get(id);
	const p = api('GET', '/api/tokens/' + id);
	p.catch(() => S.details.delete(id));
	S.details.delete(id);
	S.details.set(id, p);
	while (S.details.size > DETAILS_KEPT)
		S.details.delete(S.details.keys().next().value);
	return p;
}

function preload(url) {
	if (!url || S.images.has(url))
		return;
	const im = new Image();
	im.decoding = 'async';
	im.src = url;
	S.images.set(url, im);
	while (S.images.size > IMAGES_KEPT)
		S.images.delete(S.images.keys().next().value);
}

function imgUrl(sha) {
	return sha ? '/img/' + sha : '';
}

function thumbUrl(sha) {
	return sha ? '/thumb/' + sha : '';
}

function prefetch(i) {
	const list = S.list;
	for (let j = i + 1; j <= i + PREFETCH; j++)
		list.get(j).then((t) => {
			if (!t)
				return;
			detail(t.id).then((d) => {
				preload(imgUrl(d.image));
				if (d.candidates && d.candidates.length > 1)
					for (const c of d.candidates)
						preload(thumbUrl(c.image));
			}, () => {});
		}, () => {});
	list.get(i - 1).then((t) => t && detail(t.id).catch(() => {}), () => {});
}

/* ---- views ---- */

function setView(v) {
	S.view = v;
	for (const s of ['loupe', 'grid', 'cands', 'rarity', 'conflicts'])
		$('v-' + s).hidden = s !== v;
	for (const b of document.querySelectorAll('.views button[data-view]'))
		b.setAttribute('aria-pressed', String(b.dataset.view === v));
	document.body.dataset.view = v;
	if (v === 'grid') {
		gridLayout();
		gridScrollTo(S.index);
		$('g-scroll').focus({preventScroll: true});
	} else if (v === 'rarity') {
		loadRarity();
	} else if (v === 'conflicts') {
		loadConflicts();
	} else {
		show(S.index);
	}
}

function refresh() {
	if (S.view === 'grid')
		gridRender();
	else if (S.view === 'loupe' || S.view === 'cands')
		show(S.index);
}

/* show the token at list index i in the loupe or the candidates view */
async function show(i) {
	const list = S.list;
	if (list.total >= 0 && i >= list.total)
		i = list.total - 1;
	if (i < 0)
		i = 0;
	S.index = i;
	const seq = ++S.showSeq;
	let t;
	try {
		t = await list.get(i);
	} catch (e) {
		toast(e.message, true);
		return;
	}
	if (seq !== S.showSeq)
		return;
	$('l-empty').hidden = !!t;
	$('v-loupe').classList.toggle('none', !t);
	if (!t) {
		$('l-img').removeAttribute('src');
		$('l-title').textContent = 'No token';
		$('l-pos').textContent = '0 tokens: ' + list.describe();
		document.body.dataset.token = '';
		return;
	}
	let d;
	try {
		d = await detail(t.id);
	} catch (e) {
		if (seq === S.showSeq)
			toast(e.message, true);
		return;
	}
	if (seq !== S.showSeq)
		return;
	list.patch(i, {status: d.review ? d.review.status : d.status, image: d.image});
	if (S.view === 'cands')
		renderCands(d);
	else
		renderLoupe(d, i);
	document.body.dataset.token = String(d.id);
	document.body.dataset.status = t.status || '';
	prefetch(i);
}

function statusOf(d) {
	return (d.review && d.review.status) || d.status || 'pending';
}

function renderLoupe(d, i) {
	const img = $('l-img');
	const url = imgUrl(d.image);
	if (img.getAttribute('src') !== url) {
		if (url)
			img.src = url;
		else
			img.removeAttribute('src');
	}
	img.alt = d.image ? `Token ${d.id}` : `Token ${d.id} has no image yet`;
	$('l-title').textContent = `#${d.id}` + (d.kind && d.kind !== 'generated' ? ` (${d.kind})` : '');
	const st = statusOf(d);
	const badge = $('l-status');
	badge.textContent = st;
	badge.className = 'badge ' + st;
	const n = S.list.total;
	$('l-pos').textContent = `${i + 1} of ${n >= 0 ? n : '?'} · ${S.list.describe()}`;
	const rv = d.review || {};
	$('l-note').textContent = rv.note ? 'Note: ' + rv.note : '';
	/* a composed token or a legendary: rendering again cannot change it */
	const rb = document.querySelector('.actions button[data-act="regenerate"]');
	rb.disabled = !!d.no_regenerate;
	rb.title = d.no_regenerate ? `Cannot regenerate #${d.id}: it is ${d.no_regenerate}` :
		'Request regeneration (R; Shift+R: the same seed, the note added to the prompt)';

	const strip = $('l-strip');
	clear(strip);
	const cands = d.candidates || [];
	if (cands.length > 1)
		for (const c of cands)
			strip.append(h('button', {
				type: 'button',
				class: c.picked ? 'picked' : '',
				'aria-label': `Pick candidate ${c.k} (${c.k})` + (c.picked ? ', picked' : ''),
				onclick: () => pick(c.k),
			}, h('img', {src: thumbUrl(c.image), alt: ''}), h('span', {class: 'k', text: String(c.k)})));
	strip.hidden = cands.length <= 1;

	const tr = $('l-traits');
	clear(tr);
	for (const t of d.traits || [])
		tr.append(h('tr', null, h('th', {text: t.layer}), h('td', {text: t.value})));
	const total = S.session ? S.session.total : '';
	const bits = [];
	if (d.rank !== null && d.rank !== undefined)
		bits.push(`rarity rank ${d.rank} of ${total}`);
	if (d.score !== null && d.score !== undefined)
		bits.push(`score ${Number(d.score).toFixed(3)}`);
	if (d.seed !== null && d.seed !== undefined)
		bits.push(`seed ${d.seed}`);
	$('l-rank').textContent = bits.join(' · ');

	const qa = $('l-qa');
	clear(qa);
	for (const f of d.qa || [])
		qa.append(h('li', {class: f.severity || ''}, h('b', {text: f.check}), ' ' + (f.message || '')));
	if (!(d.qa || []).length)
		qa.append(h('li', {class: 'ok', text: 'no findings'}));

	const ai = $('l-ai');
	clear(ai);
	$('l-ai-box').hidden = !d.ai;
	if (d.ai) {
		const a = d.ai;
		const row = (k, v) => {
			if (v !== null && v !== undefined && v !== '')
				ai.append(h('tr', null, h('th', {text: k}), h('td', {text: String(v)})));
		};
		row('prompt', a.prompt);
		row('negative', a.negative);
		row('seed', a.seed);
		row('sampler', a.sampler);
		row('scheduler', a.scheduler);
		row('steps', a.steps);
		row('cfg', a.cfg);
		row('checkpoint', a.checkpoint);
		row('LoRAs', (a.loras || []).map((l) => `${l.name}:${l.weight}`).join(', ') || 'none');
		if (a.width)
			row('size', `${a.width}x${a.height}`);
	}

	const log = $('l-log');
	clear(log);
	const ds = (d.decisions || []).slice().reverse();
	for (const x of ds)
		log.append(h('li', {class: x.undone ? 'undone' : ''},
			`${fmtTime(x.at)} ${x.reviewer}: ${x.action}` +
			(x.candidate ? ` ${x.candidate}` : '') + (x.note ? ` "${x.note}"` : '') +
			(x.undone ? ' (undone)' : '')));
	if (!ds.length)
		log.append(h('li', {text: 'none yet'}));
}

function renderCands(d) {
	$('c-title').textContent = `Candidates of #${d.id} (${statusOf(d)}): press 1-${Math.min(9, (d.candidates || []).length) || 1} to pick`;
	const row = $('c-row');
	clear(row);
	const cands = d.candidates && d.candidates.length ? d.candidates :
		[{k: 1, image: d.image, seed: d.seed, picked: true, regeneration: 0}];
	for (const c of cands)
		row.append(h('figure', {class: c.picked ? 'picked' : '', 'data-k': c.k},
			h('img', {src: imgUrl(c.image), alt: `Candidate ${c.k} of token ${d.id}`}),
			h('figcaption', null, h('b', {text: `${c.k}`}),
				` seed ${c.seed}` + (c.regeneration ? ` · regeneration ${c.regeneration}` : '') +
				(c.picked ? ' · picked' : ''))));
}

/* ---- decisions ---- */

function current() {
	return S.list.at(S.index);
}

function decide(action, extra, advance = true) {
	const i = S.index;
	const t = current();
	if (!t)
		return Promise.resolve();
	const id = t.id;
	const before = t.status;
	S.list.patch(i, {status: ACTION_STATUS[action] || before});	/* a note keeps it */
	const entry = {kind: 'one', id};
	S.undo.push(entry);
	if (advance && (S.list.total < 0 || i + 1 < S.list.total)) {
		S.index = i + 1;
		if (S.view === 'grid')
			gridScrollTo(S.index);
	}
	refresh();
	return enqueue(async () => {
		try {
			const r = await api('POST', `/api/tokens/${id}/decision`, Object.assign({action}, extra));
			S.ownRows += 1;
			S.details.delete(id);
			if (r && r.review)
				S.list.patch(S.list.indexOf(id), {status: r.review.status});
			toast(`#${id}: ${r && r.review ? r.review.status : action}`);
		} catch (e) {
			S.list.patch(S.list.indexOf(id), {status: before});
			S.undo.splice(S.undo.indexOf(entry), 1);
			toast(`#${id}: ${e.message}`, true);
		}
		if (S.view === 'grid')
			gridRender();
		else if (S.list.at(S.index) && S.list.at(S.index).id === id)
			show(S.index);
		afterChange();
	});
}

async function pick(k) {
	const t = current();
	if (!t)
		return;
	let d;
	try {
		d = await detail(t.id);
	} catch (e) {
		toast(e.message, true);
		return;
	}
	const n = (d.candidates || []).length;
	if (k > n) {
		toast(`#${t.id} has ${n} candidate${n === 1 ? '' : 's'}, not ${k}`, true);
		return;
	}
	await decide('pick', {candidate: k});
}

/* R: new seeds (the note optional, added to the prompt if asked); Shift+R (same): the same
 * seed, the note (needed) added to the prompt */
async function regenerate(same) {
	const t = current();
	if (!t)
		return;
	if (t.regenerate === false) {
		let why = 'rendering it again gives the same image';
		try {
			why = (await detail(t.id)).no_regenerate || why;
		} catch (e) {
			/* the short reason will do */
		}
		toast(`#${t.id} cannot be regenerated: it is ${why}`, true);
		return;
	}
	const r = await askNote(t.id, !same, same ? 'Regenerate with the same seed: the note is ' +
		'added to the prompt' : 'Regenerate: note (optional)');
	if (!r)
		return;
	if (same && !r.note) {
		toast('The same seed needs a note to add to the prompt (else the image would not change)', true);
		return;
	}
	if (same)
		await decide('regenerate', {note: r.note, seed: 'same'});
	else
		await decide('regenerate', r.note ? {note: r.note, prompt_add: r.prompt_add} : {});
}

/* N: a note on this token, an action of its own: the status and the votes stay (no advance) */
async function note() {
	const t = current();
	if (!t)
		return;
	const r = await askNote(t.id, false, 'Note');
	if (!r || !r.note)
		return;
	await decide('note', {note: r.note}, false);
}

function undo() {
	return enqueue(async () => {
		let r;
		try {
			r = await api('POST', '/api/undo', {});
		} catch (e) {
			toast(e.message, true);
			return;
		}
		const undone = (r && r.undone) || [];
		S.ownRows += undone.length;
		if (!undone.length) {
			toast('Nothing of yours to undo');
			return;
		}
		const last = S.undo.pop();
		if (last && last.kind === 'one' && undone.length === 1) {
			S.details.delete(last.id);
			const i = S.list.indexOf(last.id);
			try {
				const d = await detail(last.id, true);
				S.list.patch(i, {status: statusOf(d)});
			} catch (e) {
				/* shown by show() below */
			}
			if (i >= 0)
				S.index = i;
			toast(`Undone: #${last.id}`);
			if (S.view === 'grid') {
				gridScrollTo(S.index);
				gridRender();
			} else {
				show(S.index);
			}
		} else {
			toast(`Undone: ${undone.length} decision${undone.length === 1 ? '' : 's'}`);
			S.details.clear();
			await reload(true);
		}
		afterChange();
	});
}

/* ---- bulk ---- */

async function bulk() {
	const list = S.list;
	if (!(list instanceof TokenList)) {
		toast('Apply to all works on a filter, not on the conflicts queue', true);
		return;
	}
	const f = list.filter;
	let n;
	try {	/* counted now: decisions since the list was fetched may have changed it */
		n = (await api('GET', '/api/tokens?' + query(f, 0, 1))).total;
	} catch (e) {
		toast(e.message, true);
		return;
	}
	const dlg = $('d-bulk');
	const what = () => {
		const act = $('d-bulk-action');
		$('d-bulk-what').textContent = `${act.options[act.selectedIndex].text}: all ` +
			`${n} token${n === 1 ? '' : 's'} that match ${describeFilter(f)}.`;
	};
	what();
	$('d-bulk-action').onchange = what;
	$('d-bulk-note').value = '';
	dlg.returnValue = '';
	dlg.showModal();
	$('d-bulk-action').focus();
	const ok = await new Promise((res) => dlg.addEventListener('close', () => res(dlg.returnValue === 'ok'), {once: true}));
	if (!ok)
		return;
	const body = {filter: filterJson(f), action: $('d-bulk-action').value};
	if ($('d-bulk-note').value)
		body.note = $('d-bulk-note').value;
	await enqueue(async () => {
		try {
			const r = await api('POST', '/api/bulk', body);
			S.ownRows += r.decided || 0;
			S.undo.push({kind: 'bulk', group: r.group});
			toast(`${body.action}: ${r.decided} token${r.decided === 1 ? '' : 's'} (Backspace undoes)` +
				(r.skipped ? `; ${r.skipped} skipped: ${r.skipped_why}` : ''));
		} catch (e) {
			toast(e.message, true);
			return;
		}
		S.details.clear();
		await reload(true);
		afterChange();
	});
}

function filterJson(f) {
	const o = {};
	if (f.status)
		o.status = f.status;
	if (f.trait && f.trait.length)
		o.trait = f.trait.slice();
	if (f.reviewer)
		o.reviewer = f.reviewer;
	if (f.qa)
		o.qa = f.qa;
	if (f.rank_min !== undefined && f.rank_min !== '')
		o.rank_min = Number(f.rank_min);
	if (f.rank_max !== undefined && f.rank_max !== '')
		o.rank_max = Number(f.rank_max);
	return o;
}

/* ---- notes dialog ---- */

function askNote(id, withPrompt, title) {
	const dlg = $('d-note');
	$('d-note-title').textContent = title;
	$('d-note-id').textContent = '#' + id;
	$('d-note-text').value = '';
	$('d-note-prompt').checked = false;
	$('d-note-prompt-row').hidden = !withPrompt;
	dlg.returnValue = '';
	dlg.showModal();
	$('d-note-text').focus();
	return new Promise((res) => dlg.addEventListener('close', () => {
		if (dlg.returnValue !== 'ok')
			return res(null);
		res({note: $('d-note-text').value.trim(), prompt_add: $('d-note-prompt').checked});
	}, {once: true}));
}

/* ---- grid (virtualised: only the rows in view, and one above and below, are in the DOM) ---- */

const G = {cols: 1, cw: CELL_W, shown: new Map(), spare: [], raf: 0};	/* shown: list index -> cell */

function gridLayout() {
	const sc = $('g-scroll');
	const cols = Math.max(1, Math.floor(sc.clientWidth / CELL_W));
	const cw = Math.floor(sc.clientWidth / cols);	/* the columns share the width */
	if (cols !== G.cols || cw !== G.cw) {	/* every cell moves: start again */
		for (const c of G.shown.values())
			gridFree(c);
		G.shown.clear();
	}
	G.cols = cols;
	G.cw = cw;
	const n = Math.max(0, S.list.total);
	$('g-space').style.height = `${Math.ceil(n / G.cols) * CELL_H}px`;
	gridRender();
}

function gridCell() {
	const img = h('img', {alt: '', decoding: 'async'});
	const id = h('span', {class: 'id'});
	const st = h('span', {class: 'st'});
	const c = h('div', {class: 'cell', role: 'button'}, img, h('div', {class: 'cap'}, id, st));
	c.style.height = `${CELL_H - 8}px`;
	c.addEventListener('click', () => {
		S.index = Number(c.dataset.i);
		gridRender();
	});
	c.addEventListener('dblclick', () => {
		S.index = Number(c.dataset.i);
		setView('loupe');
	});
	c.parts = {img, id, st};
	c.key = '';
	return c;
}

function gridFree(c) {
	c.remove();
	G.spare.push(c);
}

/* fill cell c for list index i; the DOM is touched only where something changed */
function gridFill(c, i) {
	if (c.dataset.i !== String(i) || c.cw !== G.cw) {
		c.dataset.i = i;
		c.cw = G.cw;
		c.style.width = `${G.cw - 8}px`;
		c.style.transform = `translate(${(i % G.cols) * G.cw}px, ${Math.floor(i / G.cols) * CELL_H}px)`;
	}
	const t = S.list.at(i);
	const st = t ? t.status || '' : '';
	const sha = t ? t.image : null;
	const key = `${t ? t.id : ''}|${st}|${sha}|${i === S.index}`;
	if (key === c.key)
		return;
	c.key = key;
	c.className = 'cell ' + st + (i === S.index ? ' sel' : '');
	c.setAttribute('aria-label', t ? `Token ${t.id}, ${st}` : 'loading');
	c.parts.id.textContent = t ? '#' + t.id : '…';
	c.parts.st.textContent = st;
	if (t && sha === undefined)	/* an IdList: the summary comes from the detail */
		detail(t.id).then((d) => {
			S.list.patch(S.list.indexOf(d.id), {image: d.image, status: statusOf(d)});
			scheduleGrid();
		}, () => {});
	const url = thumbUrl(sha);
	if (c.dataset.src !== url) {
		c.dataset.src = url;
		if (url)
			c.parts.img.src = url;
		else
			c.parts.img.removeAttribute('src');
	}
}

/* only the rows in view, and one above and below, are in the DOM */
function gridRender() {
	if (S.view !== 'grid')
		return;
	const sc = $('g-scroll');
	const space = $('g-space');
	const n = Math.max(0, S.list.total);
	const rows = Math.ceil(n / G.cols);
	const r0 = Math.max(0, Math.floor(sc.scrollTop / CELL_H) - 1);
	const r1 = Math.min(rows, Math.ceil((sc.scrollTop + sc.clientHeight) / CELL_H) + 1);
	const i0 = r0 * G.cols, i1 = Math.min(n, r1 * G.cols);
	for (const [i, c] of G.shown)
		if (i < i0 || i >= i1) {
			gridFree(c);
			G.shown.delete(i);
		}
	const add = [];
	for (let i = i0; i < i1; i++) {
		let c = G.shown.get(i);
		if (!c) {
			c = G.spare.pop() || gridCell();
			G.shown.set(i, c);
			add.push(c);
		}
		gridFill(c, i);
	}
	if (add.length)
		space.append(...add);
	space.setAttribute('aria-rowcount', String(rows));
	document.body.dataset.gridFirst = String(i0);
	document.body.dataset.gridLast = String(i1 - 1);
}

function scheduleGrid() {
	if (G.raf)
		return;
	G.raf = requestAnimationFrame(() => {
		G.raf = 0;
		gridRender();
	});
}

function gridScrollTo(i) {
	if (S.view !== 'grid')
		return;
	const sc = $('g-scroll');
	const y = Math.floor(i / G.cols) * CELL_H;
	if (y < sc.scrollTop)
		sc.scrollTop = y;
	else if (y + CELL_H > sc.scrollTop + sc.clientHeight)
		sc.scrollTop = y + CELL_H - sc.clientHeight;
	gridRender();
}

function gridMove(d) {
	const n = S.list.total;
	if (n <= 0)
		return;
	S.index = Math.max(0, Math.min(n - 1, S.index + d));
	gridScrollTo(S.index);
}

/* ---- rarity ---- */

let rarityTimer = 0;
async function loadRarity() {
	let r;
	try {
		r = await api('GET', '/api/rarity');
	} catch (e) {
		toast(e.message, true);
		return;
	}
	fillTraitList(r);
	const body = $('r-body');
	clear(body);
	let skewed = 0;
	for (const L of r.layers || []) {
		const vals = L.values || [];
		const planned = vals.reduce((s, v) => s + v.planned, 0);
		const kept = vals.reduce((s, v) => s + v.planned - v.rejected, 0);
		const tb = h('tbody');
		for (const v of vals) {
			const pShare = planned ? v.planned / planned : 0;
			const kShare = kept ? (v.planned - v.rejected) / kept : 0;
			/* skew: the share of this value among the tokens not rejected drifts more than 20%
			 * (relative) from what was planned, by at least one token's worth */
			const skew = v.planned > 0 &&
				Math.abs(kShare - pShare) > 0.2 * pShare && Math.abs(kShare - pShare) * kept >= 1;
			if (skew)
				skewed++;
			const bar = h('div', {class: 'rbar', title: `${v.approved} approved, ${v.rejected} rejected of ${v.planned}`});
			const a = h('span', {class: 'a'});
			const rj = h('span', {class: 'r'});
			a.style.width = `${v.planned ? (100 * v.approved) / v.planned : 0}%`;
			rj.style.width = `${v.planned ? (100 * v.rejected) / v.planned : 0}%`;
			bar.append(a, rj);
			tb.append(h('tr', {class: skew ? 'skew' : '', 'data-value': `${L.layer}:${v.value}`},
				h('td', {text: v.value}), h('td', {text: String(v.planned)}),
				h('td', {text: String(v.approved)}), h('td', {text: String(v.rejected)}),
				h('td', {text: String(v.pending)}),
				h('td', {text: `${(100 * pShare).toFixed(1)}% → ${(100 * kShare).toFixed(1)}%`}),
				h('td', {class: 'bar'}, bar)));
		}
		body.append(h('div', {class: 'rlayer'}, h('table', null, h('caption', {text: L.layer}),
			h('thead', null, h('tr', null, ...['value', 'planned', 'approved', 'rejected', 'pending', 'share', '']
				.map((x) => h('th', {scope: 'col', text: x})))), tb)));
	}
	$('b-rarity').firstChild.textContent = skewed ? `Rarity (${skewed} skewed) ` : 'Rarity ';
}

function fillTraitList(r) {
	const dl = $('traits');
	if (dl.childElementCount)
		return;
	for (const L of r.layers || [])
		for (const v of L.values || [])
			dl.append(h('option', {value: `${L.layer}:${v.value}`}));
}

/* ---- conflicts ---- */

async function loadConflicts() {
	let r;
	try {
		r = await api('GET', '/api/conflicts');
	} catch (e) {
		toast(e.message, true);
		return;
	}
	S.conflicts = r.tokens || [];
	S.conflictSel = Math.min(S.conflictSel, Math.max(0, S.conflicts.length - 1));
	$('nconflicts').textContent = S.conflicts.length ? String(S.conflicts.length) : '';
	if (S.view === 'conflicts')
		renderConflicts();
}

function renderConflicts() {
	const tb = $('k-table');
	clear(tb);
	$('k-empty').hidden = S.conflicts.length > 0;
	if (!S.conflicts.length)
		return;
	tb.append(h('tr', null, h('th', {text: 'token'}), h('th', {text: 'decisions (newest last)'})));
	S.conflicts.forEach((c, k) => {
		const ds = (c.decisions || []).filter((x) => !x.undone).map((x) =>
			`${x.reviewer}: ${x.action}${x.candidate ? ' ' + x.candidate : ''}${x.note ? ` "${x.note}"` : ''}`);
		tb.append(h('tr', {class: k === S.conflictSel ? 'sel' : '', 'data-id': c.id,
			onclick: () => openConflict(k)},
		h('td', null, h('button', {type: 'button', text: '#' + c.id, 'aria-label': `Open token ${c.id}`})),
		h('td', {text: ds.join(' · ')})));
	});
}

function openConflict(k) {
	if (!S.conflicts.length)
		return;
	S.list = new IdList(S.conflicts.map((c) => c.id), 'the conflicts queue');
	S.list.onload = () => scheduleGrid();
	S.index = k;
	$('f-count').textContent = `${S.conflicts.length} in conflict`;
	setView('loupe');
}

/* ---- counts ---- */

let countTimer = 0;
function afterChange() {
	clearTimeout(countTimer);
	countTimer = setTimeout(() => {
		loadCounts();
		loadConflicts();
	}, 300);
	if (S.view === 'rarity') {
		clearTimeout(rarityTimer);
		rarityTimer = setTimeout(loadRarity, 300);
	}
}

async function loadCounts() {
	try {
		const n = {};
		for (const st of ['approved', 'rejected', 'regenerate', 'pending'])
			n[st] = (await api('GET', `/api/tokens?status=${st}&limit=1`)).total;
		const s = S.session;
		$('progress').textContent = `${n.approved} approved · ${n.rejected} rejected · ` +
			`${n.regenerate} to regenerate · ${n.pending} pending of ${s.total}` +
			(s.review_required ? ` · release needs ${s.approvals || 1} approval${s.approvals > 1 ? 's' : ''}` : '');
	} catch (e) {
		/* the toast of the failing call says it */
	}
}

/* ---- filters ---- */

function readFilter() {
	const f = {};
	const v = (id) => $(id).value.trim();
	if (v('f-status'))
		f.status = v('f-status');
	const tr = v('f-trait').split(',').map((s) => s.trim()).filter(Boolean);
	if (tr.length)
		f.trait = tr;
	if (v('f-reviewer'))
		f.reviewer = v('f-reviewer');
	if (v('f-qa'))
		f.qa = v('f-qa');
	if (v('f-rank-min'))
		f.rank_min = v('f-rank-min');
	if (v('f-rank-max'))
		f.rank_max = v('f-rank-max');
	return f;
}

async function reload(keepIndex) {
	const id = keepIndex ? (current() || {}).id : undefined;
	const list = new TokenList(S.list instanceof TokenList ? S.list.filter : S.filter);
	list.onload = () => scheduleGrid();
	S.list = list;
	try {
		await list.get(0);
	} catch (e) {
		toast(e.message, true);
	}
	$('f-count').textContent = `${Math.max(0, list.total)} match`;
	if (!keepIndex)
		S.index = 0;
	else if (S.index >= list.total)
		S.index = Math.max(0, list.total - 1);
	if (id !== undefined) {
		const k = list.indexOf(id);
		if (k >= 0)
			S.index = k;
	}
	if (S.view === 'grid')
		gridLayout();
	else if (S.view === 'loupe' || S.view === 'cands')
		show(S.index);
}

function applyFilter() {
	S.filter = readFilter();
	S.list = new TokenList(S.filter);
	if (document.activeElement && document.activeElement.blur)
		document.activeElement.blur();
	reload(false);
}

/* ---- keys ---- */

function isField(t) {
	if (!t || !t.tagName)
		return false;
	if (t.isContentEditable)
		return true;
	if (t.tagName === 'TEXTAREA' || t.tagName === 'SELECT')
		return true;
	return t.tagName === 'INPUT' && !['checkbox', 'radio', 'button', 'submit'].includes(t.type);
}

function onKey(e) {
	if (e.defaultPrevented || document.querySelector('dialog[open]'))
		return;
	if (isField(e.target)) {
		if (e.key === 'Escape')
			e.target.blur();
		return;
	}
	if (e.altKey || e.metaKey)
		return;
	if (e.ctrlKey) {
		if (e.key === 'z' || e.key === 'Z') {
			e.preventDefault();
			undo();
		}
		return;
	}
	const k = e.key.length === 1 ? e.key.toLowerCase() : e.key;
	const grid = S.view === 'grid';
	const onToken = S.view === 'loupe' || S.view === 'cands' || grid;
	let done = true;
	if (k === 'p' && onToken)
		decide('approve');
	else if (k === 'x' && onToken)
		decide('reject');
	else if (k === 'u' && onToken)
		decide('pending');
	else if (k === 'r' && onToken)
		regenerate(e.shiftKey);
	else if (k === 'n' && onToken)
		note();
	else if (k >= '1' && k <= '9' && onToken)
		pick(Number(k));
	else if (k === 'Backspace')
		undo();
	else if (k === 'ArrowRight' && onToken)
		grid ? gridMove(1) : show(S.index + 1);
	else if (k === 'ArrowLeft' && onToken)
		grid ? gridMove(-1) : show(S.index - 1);
	else if (k === 'ArrowDown' && grid)
		gridMove(G.cols);
	else if (k === 'ArrowUp' && grid)
		gridMove(-G.cols);
	else if (k === 'PageDown' && grid)
		gridMove(G.cols * Math.max(1, Math.floor($('g-scroll').clientHeight / CELL_H)));
	else if (k === 'PageUp' && grid)
		gridMove(-G.cols * Math.max(1, Math.floor($('g-scroll').clientHeight / CELL_H)));
	else if (k === 'Home' && onToken)
		grid ? gridMove(-S.index) : show(0);
	else if (k === 'End' && onToken)
		grid ? gridMove(S.list.total) : show(S.list.total - 1);
	else if (k === 'ArrowDown' && S.view === 'conflicts')
		moveConflict(1);
	else if (k === 'ArrowUp' && S.view === 'conflicts')
		moveConflict(-1);
	else if (k === 'Enter' && S.view === 'conflicts' && e.target.tagName !== 'BUTTON')
		openConflict(S.conflictSel);
	else if (k === 'Enter' && grid && e.target.tagName !== 'BUTTON')
		setView('loupe');
	else if (k === 'g')
		setView(grid ? 'loupe' : 'grid');
	else if (k === 'c')
		setView(S.view === 'cands' ? 'loupe' : 'cands');
	else if (k === 't')
		setView(S.view === 'rarity' ? 'loupe' : 'rarity');
	else if (k === 'k')
		setView(S.view === 'conflicts' ? 'loupe' : 'conflicts');
	else if (k === 'l' || k === 'Escape')
		setView('loupe');
	else if (k === 'f')
		$('f-status').focus();
	else if (k === 'b')
		bulk();
	else if (k === '?')
		help();
	else
		done = false;
	if (done)
		e.preventDefault();
}

function moveConflict(d) {
	if (!S.conflicts.length)
		return;
	S.conflictSel = Math.max(0, Math.min(S.conflicts.length - 1, S.conflictSel + d));
	renderConflicts();
}

function help() {
	const d = $('d-help');
	d.showModal();
	$('d-help-close').focus();
}

function gate(msg) {
	$('gate-msg').textContent = msg;
	$('gate').hidden = false;
	document.body.dataset.gate = '1';
}

/* ---- start ---- */

function wire() {
	document.addEventListener('keydown', onKey);
	$('filters').addEventListener('submit', (e) => {
		e.preventDefault();
		applyFilter();
	});
	$('filters').addEventListener('keydown', (e) => {
		if (e.key === 'Enter' && e.target.tagName === 'SELECT') {	/* no implicit submit */
			e.preventDefault();
			applyFilter();
		}
	});
	$('f-clear').addEventListener('click', () => {
		$('filters').reset();
		applyFilter();
	});
	$('f-bulk').addEventListener('click', bulk);
	$('b-help').addEventListener('click', help);
	for (const b of document.querySelectorAll('.views button[data-view]'))
		b.addEventListener('click', () => setView(b.dataset.view));
	for (const b of document.querySelectorAll('.actions button[data-act]'))
		b.addEventListener('click', () => {
			const a = b.dataset.act;
			if (a === 'regenerate')
				regenerate(false);
			else if (a === 'note')
				note();
			else if (a === 'undo')
				undo();
			else
				decide(a);
		});
	$('d-note').addEventListener('keydown', (e) => {	/* Enter saves, also from the box */
		if (e.key === 'Enter' && !e.shiftKey && e.target.tagName !== 'BUTTON') {
			e.preventDefault();
			$('d-note').close('ok');
		}
	});
	$('d-bulk').addEventListener('keydown', (e) => {
		if (e.key === 'Enter' && e.target.id !== 'd-bulk-cancel') {
			e.preventDefault();
			$('d-bulk').close('ok');
		}
	});
	$('g-scroll').addEventListener('scroll', scheduleGrid, {passive: true});
	window.addEventListener('resize', () => {
		if (S.view === 'grid')
			gridLayout();
	});
}

async function start() {
	wire();
	document.body.dataset.busy = '0';
	let s;
	try {
		s = await api('GET', '/api/session');
	} catch (e) {
		if (e.status !== 401)
			gate('The review server did not answer: ' + e.message);
		return;
	}
	S.session = s;
	S.csrf = s.csrf;
	document.title = `${s.project}: kiln review`;
	$('project').textContent = s.project;
	$('who').textContent = 'reviewer ' + s.reviewer;
	$('reviewers').append(h('option', {value: s.reviewer}));
	S.list = new TokenList({});
	S.list.onload = () => scheduleGrid();
	await watchChanges();	/* the version before the data: a change after it is seen */
	await reload(false);
	setView('loupe');
	loadCounts();
	loadConflicts();
	api('GET', '/api/rarity').then(fillTraitList, () => {});
	document.body.dataset.ready = '1';
}

/* ---- outside changes ---- */

const CHANGES_EVERY = 2000;	/* ms between two looks at GET /api/changes */

/* Poll the catalog's change counter; when it moved (a `kiln render` brought new candidates,
 * another reviewer decided), refetch what the page shows without losing the reviewer's place:
 * the loaded pages of the list in place, the current token's details, the counts. Waits while
 * a decision is on its way or a dialog is open. */
async function watchChanges() {
	let version = null;
	try {
		version = (await api('GET', '/api/changes')).version;
	} catch (e) {
		/* the first tick asks again */
	}
	/* in the decisions' queue, so no POST of this page is under way: the page's own rows
	 * since the last look (S.ownRows) are exactly its share of the version's move */
	const look = async () => {
		const j = await api('GET', '/api/changes' + (version === null ? '' : '?since=' + version));
		const own = S.ownRows;
		S.ownRows = 0;
		if (version !== null && j.version !== version + own)
			await refetchShown();
		version = j.version;
		document.body.dataset.version = String(version);
	};
	const tick = async () => {
		try {
			if (!(S.busy > 0 || document.querySelector('dialog[open]')))
				await enqueue(look);
		} catch (e) {
			/* a 401 shows the gate; anything else: try again at the next tick */
		}
		setTimeout(tick, CHANGES_EVERY);
	};
	setTimeout(tick, CHANGES_EVERY);
}

async function refetchShown() {
	const list = S.list;
	const id = (current() || {}).id;
	if (list instanceof TokenList) {
		const pages = [...list.pages.keys()].filter((p) => Array.isArray(list.pages.get(p)));
		const old = new Map();
		for (const p of pages)
			for (const t of list.pages.get(p))
				old.set(t.id, JSON.stringify(t));
		const fresh = new Set();
		for (const p of pages) {
			const j = await api('GET', '/api/tokens?' + query(list.filter, p * PAGE, PAGE));
			if (S.list !== list)
				return;	/* the filter changed meanwhile: that list is fresh */
			list.total = j.total;
			list.pages.set(p, j.tokens);
			for (const t of j.tokens)	/* a detail kept (prefetched) only if its token is as it was */
				if (old.get(t.id) === JSON.stringify(t))
					fresh.add(t.id);
		}
		for (const k of [...S.details.keys()])
			if (!fresh.has(k))
				S.details.delete(k);
	} else {
		S.details.clear();
	}
	if (id !== undefined)
		S.details.delete(id);	/* the token on screen: always again (another's note) */
	if (list instanceof TokenList) {
		const k = id === undefined ? -1 : list.indexOf(id);
		if (k >= 0)
			S.index = k;
		else if (list.total >= 0 && S.index >= list.total)
			S.index = Math.max(0, list.total - 1);
		$('f-count').textContent = `${Math.max(0, list.total)} match`;
	}
	if (S.view === 'grid')
		gridLayout();
	else
		refresh();
	afterChange();
}

start();
