// The console's shell: sign-in, the communities in scope, and the router between screens.
import { call, get, post, session, saveSession, clearSession, whenSignedOut, admin } from './api.js';
import { h, clear, msg, showError, field, input, takeFlash } from './ui.js';
import { registerScreen } from './register.js';
import { meetingsScreen, newMeetingScreen } from './meetings.js';
import { meetingScreen } from './meeting.js';
import { committeeScreen } from './committee.js';
import { campaignsScreen, boardScreen, mayWatchBoards } from './district.js';
import { prepScreen } from './prep.js';

const ROLE_NAMES = { district_admin: '区级管理员', street_admin: '街道管理员', shequ_admin: '社区管理员', prep_group: '筹备组', committee: '业委会', auditor: '审计（只读）' };
const app = document.getElementById('app');
const crumbs = document.getElementById('crumbs');
let communities = null;

function setCrumbs(parts) {
  clear(crumbs);
  parts.forEach(([text, href], i) => {
    if (i) crumbs.appendChild(document.createTextNode(' › '));
    crumbs.appendChild(href ? h('a', { href }, text) : h('span', {}, text));
  });
}

function showWho() {
  const s = session();
  document.getElementById('who').textContent = s ? `${s.username}（${ROLE_NAMES[s.role] || s.role}）` : '';
  document.getElementById('logout').hidden = !s;
}

function loginScreen(reason) {
  setCrumbs([]);
  const out = msg('login-error');
  const user = input({ name: 'username', autocomplete: 'username', required: true });
  const pass = input({ name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const submit = h('button', { type: 'submit', id: 'login-submit' }, '登录');
  const form = h('form', { class: 'card login-form' },
    field('用户名', user), field('密码', pass), submit, out);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    submit.disabled = true;
    try {
      const doc = await call('POST', '/api/staff/login', { json: { username: user.value.trim(), password: pass.value } });
      saveSession(doc);
      communities = null;
      showWho();
      location.hash = '#/';
      route();
    } catch (err) { showError(out, err); } finally { submit.disabled = false; }
  });
  const box = h('section', { class: 'card login', 'data-screen': 'login' },
    h('h1', {}, '工作人员登录'),
    h('p', { class: 'hint' }, '筹备组、社区、街道和业委会工作人员使用本工作台组织业主大会。账号由街道或区级管理员开设。'),
    reason ? h('p', { class: 'msg error' }, reason) : null, form);
  return box;
}

async function loadCommunities() {
  if (!communities) communities = (await get('/api/admin/communities')).communities;
  return communities;
}

async function communitiesScreen() {
  setCrumbs([['我的小区', null]]);
  const list = await loadCommunities();
  const s = session();
  const box = h('div', { 'data-screen': 'communities' }, h('h1', {}, '我负责的小区'),
    s && mayWatchBoards(s.role) ? h('p', {}, h('a', { class: 'button secondary', href: '#/d', 'data-testid': 'to-boards' }, '查看工作进度（各小区成立业主大会的进展）')) : null);
  if (!list.length) {
    box.appendChild(h('p', { class: 'msg warn' }, '您的账号还没有分配小区。请联系街道或区级管理员。'));
    return box;
  }
  box.appendChild(h('p', { class: 'hint' }, `共 ${list.length} 个小区。点开小区，导入业主名册、组织会议。`));
  box.appendChild(h('ul', { class: 'list', 'data-testid': 'communities' }, list.map((c) => h('li', {},
    h('a', { href: `#/c/${encodeURIComponent(c.community_id)}`, 'data-community': c.community_id },
      h('strong', {}, c.name), h('br'),
      h('span', { class: 'hint' }, `编号 ${c.community_id} · 街道 ${c.street_id || '—'} · `,
        c.register_version ? `业主名册第 ${c.register_version} 版` : '尚未导入业主名册'))))));
  return box;
}

async function communityName(cid) {
  try {
    const found = (await loadCommunities()).find((c) => c.community_id === cid);
    if (found) return found.name;
  } catch (e) { /* shown by the screen itself */ }
  return cid;
}

function communityTabs(cid, on) {
  const base = `#/c/${encodeURIComponent(cid)}`;
  const tabs = [['prep', '筹备', `${base}/prep`], ['meetings', '会议', base], ['register', '业主名册', `${base}/register`], ['committee', '业委会', `${base}/committee`]];
  return h('nav', { class: 'tabs' }, tabs.map(([key, text, href]) => h('a', { href, class: key === on ? 'on' : '', 'data-tab': key }, text)));
}

// #/  #/d  #/d/{campaign}?today=&street=  #/c/{cid}[/prep|/register|/committee|/new]  #/c/{cid}/m/{mid}[/{step}]
async function screenFor(parts, query) {
  if (!parts.length) return communitiesScreen();
  if (parts[0] === 'd') {
    if (!parts[1]) { setCrumbs([['我的小区', '#/'], ['工作进度', null]]); return campaignsScreen(); }
    setCrumbs([['我的小区', '#/'], ['工作进度', '#/d'], [parts[1], null]]);
    return boardScreen(parts[1], query);
  }
  if (parts[0] !== 'c' || !parts[1]) return communitiesScreen();
  const cid = parts[1];
  const name = await communityName(cid);
  const home = `#/c/${encodeURIComponent(cid)}`;
  const ctx = { cid, name, home, refresh: route };
  if (parts[2] === 'm' && parts[3]) {
    const mid = parts[3];
    setCrumbs([['我的小区', '#/'], [name, home], [`会议 ${mid}`, null]]);
    return meetingScreen({ ...ctx, mid, step: parts[4] || '' });
  }
  const tab = parts[2] || 'meetings';
  setCrumbs([['我的小区', '#/'], [name, null]]);
  const box = h('div', {}, h('h1', {}, name), communityTabs(cid, tab === 'new' ? 'meetings' : tab));
  let body;
  if (tab === 'register') body = await registerScreen(ctx);
  else if (tab === 'committee') body = await committeeScreen(ctx);
  else if (tab === 'prep') body = await prepScreen(ctx);
  else if (tab === 'new') body = await newMeetingScreen(ctx);
  else body = await meetingsScreen(ctx);
  box.appendChild(body);
  return box;
}

let routing = 0;
export async function route() {
  const mine = ++routing;
  showWho();
  app.dataset.ready = '0';
  if (!session()) {
    clear(app).appendChild(loginScreen());
    app.dataset.ready = '1';
    return;
  }
  // #/c/x/m/y/step?anything: what follows '?' only makes the address new (a redraw).
  const [path, search] = location.hash.replace(/^#\/?/, '').split('?');
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  const query = Object.fromEntries(new URLSearchParams(search || ''));
  let node;
  try {
    node = await screenFor(parts, query);
  } catch (err) {
    node = h('section', { class: 'card' }, h('h1', {}, '无法打开该页面'), h('p', { class: 'msg error', role: 'alert' }, err.message || String(err)),
      h('a', { class: 'button secondary', href: '#/' }, '返回我的小区'));
  }
  if (mine !== routing) return;
  clear(app);
  const flash = takeFlash();
  if (flash) app.appendChild(flash);
  app.appendChild(node);
  app.dataset.ready = '1';
  window.scrollTo(0, 0);
}

whenSignedOut((err) => {
  communities = null;
  showWho();
  clear(app).appendChild(loginScreen(`${err.message}。请重新登录。`));
  app.dataset.ready = '1';
});

document.getElementById('logout').addEventListener('click', async () => {
  try { await post('/api/staff/logout'); } catch (e) { /* the token may already be gone */ }
  clearSession();
  communities = null;
  location.hash = '#/';
  route();
});

window.addEventListener('hashchange', route);
route();

