// Small DOM helpers shared by every screen: elements, messages, confirmations, Beijing time.
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.appendChild(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
  }
  return el;
}

export function clear(el) { while (el.firstChild) el.removeChild(el.firstChild); return el; }

// A message line under a form: the server's Chinese message on refusal, or a success line.
export function msg(testid) { return h('p', { class: 'msg', role: 'status', 'data-testid': testid }); }
export function showError(el, err) {
  el.className = 'msg error';
  el.setAttribute('role', 'alert');
  el.textContent = err && err.message ? err.message : String(err);
}
export function showOk(el, text) { el.className = 'msg ok'; el.setAttribute('role', 'status'); el.textContent = text; }
export function showWarn(el, text) { el.className = 'msg warn'; el.textContent = text; }
export function hideMsg(el) { el.className = 'msg'; el.textContent = ''; }

// A button that runs an async action, disabled meanwhile; a thrown error shows in `out`.
export function action(label, out, fn, attrs = {}) {
  const b = h('button', { type: 'button', ...attrs }, label);
  b.addEventListener('click', async () => {
    if (b.disabled) return;
    b.disabled = true;
    if (out) hideMsg(out);
    try { await fn(b); } catch (e) { if (out) showError(out, e); else throw e; } finally { b.disabled = false; }
  });
  return b;
}

// Form fields with a visible Chinese label.
export function field(label, input, hint) {
  return h('label', {}, h('span', { class: 'name' }, label), input, hint ? h('span', { class: 'hint' }, hint) : null);
}
export const input = (attrs) => h('input', attrs);
export function select(name, options, value) {
  const s = h('select', { name });
  for (const [v, text] of options) s.appendChild(h('option', { value: v, selected: v === value }, text));
  return s;
}

// The confirmation of an irreversible step.  opts.input: ask for text (a reason); resolves to
// the text (or true), or null when cancelled.  opts.run: the action, run with the dialog open so
// a refusal shows inside it.
export function confirmStep(title, text, opts = {}) {
  const dlg = document.getElementById('confirm');
  const area = document.getElementById('confirm-input');
  const err = document.getElementById('confirm-error');
  document.getElementById('confirm-title').textContent = title;
  document.getElementById('confirm-text').textContent = text;
  document.getElementById('confirm-input-label').hidden = !opts.input;
  document.getElementById('confirm-input-name').textContent = opts.input || '';
  area.value = opts.value || '';
  err.textContent = '';
  const ok = document.getElementById('confirm-ok');
  const cancel = document.getElementById('confirm-cancel');
  ok.textContent = opts.ok || '确认';
  return new Promise((resolve) => {
    const done = (value) => { ok.onclick = null; cancel.onclick = null; dlg.close(); resolve(value); };
    cancel.onclick = () => done(null);
    dlg.oncancel = (e) => { e.preventDefault(); done(null); };
    ok.onclick = async () => {
      const value = opts.input ? area.value.trim() : true;
      if (opts.input && !value && !opts.optional) { err.textContent = `请填写${opts.input}`; return; }
      if (!opts.run) { done(value); return; }
      ok.disabled = true;
      try { done(await opts.run(value)); } catch (e) { err.textContent = e.message || String(e); } finally { ok.disabled = false; }
    };
    dlg.showModal();
    if (opts.input) area.focus();
  });
}

const BEIJING = new Intl.DateTimeFormat('zh-CN', {
  timeZone: 'Asia/Shanghai', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', hour12: false,
});
// An ISO time as people read it here: 2026-03-01 09:00（北京时间）.
export function beijing(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const p = Object.fromEntries(BEIJING.formatToParts(d).map((x) => [x.type, x.value]));
  return `${p.year}-${p.month}-${p.day} ${p.hour === '24' ? '00' : p.hour}:${p.minute}（北京时间）`;
}
// A <input type=datetime-local> value read as Beijing time: ISO with +08:00.
export function fromLocalInput(value) { return value ? `${value}:00+08:00` : null; }
// An ISO time as a datetime-local value in Beijing time.
export function toLocalInput(iso) {
  if (!iso) return '';
  const d = new Date(new Date(iso).getTime() + 8 * 3600 * 1000);
  return d.toISOString().slice(0, 16);
}
export function todayBeijing() { return toLocalInput(new Date().toISOString()).slice(0, 10); }

export function facts(pairs) {
  return h('dl', { class: 'facts' }, pairs.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v === null || v === undefined ? '—' : String(v))]));
}

export function table(headers, rows, attrs = {}) {
  const wide = headers.length > 4 ? 'wide' : '';
  return h('div', { class: 'scroll' }, h('table', { class: wide, ...attrs },
    h('thead', {}, h('tr', {}, headers.map((x) => h('th', {}, x)))),
    h('tbody', {}, rows.map((r) => h('tr', {}, r.map((c) => (c instanceof Node ? h('td', {}, c) : h('td', {}, c === null || c === undefined ? '' : String(c)))))))));
}

export const STATE_NAMES = { draft: '草稿', noticed: '已发布通知', open: '投票中', closed: '投票已结束', published: '结果已公布', voided: '已作废' };
export function stateBadge(state, name) { return h('span', { class: `badge ${state}`, 'data-state': state }, name || STATE_NAMES[state] || state); }

// A message that outlives the redraw after an action ("已发放…"): shown once at the top of the next screen.
let flashText = '';
export function setFlash(text) { flashText = text; }
export function takeFlash() {
  const text = flashText;
  flashText = '';
  return text ? h('p', { class: 'msg ok', role: 'status', 'data-testid': 'flash' }, text) : null;
}
