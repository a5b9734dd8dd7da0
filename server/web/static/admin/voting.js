// ③ 投票期间: the live dashboard, the canvass list per building, paper ballots keyed twice, proxies.
import { call, get, post, meetingPath, token, saveResponse } from './api.js';
import { h, msg, showError, showOk, action, field, input, select, confirmStep, table, beijing, clear, fromLocalInput, todayBeijing } from './ui.js';
import { openCard } from './codes.js';

const CHOICES = [['yes', '赞成'], ['no', '反对'], ['abstain', '弃权'], ['invalid', '空白或无法辨认']];
const MARKS = [['', '未勾选'], ['yes', '赞成'], ['no', '反对'], ['abstain', '弃权']];

function dashboardCard(ctx) {
  const url = `/dashboard/${encodeURIComponent(ctx.cid)}/${encodeURIComponent(ctx.mid)}`;
  const link = h('a', { class: 'button', href: url, target: '_blank', rel: 'noopener', 'data-testid': 'dashboard-link' }, '打开实时看板');
  // The dashboard takes the token from the address fragment and removes it at once.
  link.addEventListener('click', () => { link.href = `${url}#token=${encodeURIComponent(token())}`; });
  return h('section', { class: 'card' }, h('h2', {}, '实时看板'),
    h('p', { class: 'hint' }, '参与表决的面积和人数、每个议题离通过还差多少、各楼栋投票情况，每秒更新。可以投到大屏幕上。'), link);
}

async function canvassCard(ctx) {
  const out = msg('canvass-msg');
  const list = h('div', { 'data-testid': 'canvass-list' });
  const pick = h('select', { name: 'canvass-building' }, h('option', { value: '' }, '全部楼栋'));
  const card = h('section', { class: 'card', 'data-testid': 'canvass' }, h('h2', {}, '上门动员名单（尚未投票的户）'),
    h('p', { class: 'hint' }, '只列出还没有投票的户，姓名和电话已部分隐藏。仅供筹备组上门提醒使用，每次查看都会记入审计日志。'),
    field('楼栋', pick), out, list);
  const load = async () => {
    clear(list);
    try {
      const doc = await get(`${meetingPath(ctx.cid, ctx.mid)}/canvass`, { building: pick.value });
      if (pick.options.length === 1) {
        for (const b of doc.buildings) pick.appendChild(h('option', { value: b.building }, `${b.building} 栋`));
      }
      list.appendChild(h('p', { 'data-testid': 'canvass-total' }, `尚未投票：共 `, h('strong', {}, String(doc.total_not_voted)), ' 户'));
      for (const b of doc.buildings) {
        list.appendChild(h('h3', {}, `${b.building} 栋：${b.count} 户未投票`));
        list.appendChild(table(['房号', '业主', '电话'], b.not_voted.map((u) => [u.unit_label, u.owner_masked, u.phone_masked])));
      }
    } catch (e) { showError(out, e); }
  };
  pick.addEventListener('change', load);
  await load();
  card.appendChild(action('刷新名单', out, load, { class: 'secondary', 'data-testid': 'canvass-refresh' }));
  return card;
}

function paperVotesForm(doc) {
  const readers = [];
  const nodes = doc.matters.map((m) => {
    if (m.kind === 'resolution') {
      const s = select(`paper-${m.matter_id}`, [['', '（本户不表决此项／未填）'], ...CHOICES], '');
      readers.push(() => (s.value ? [{ matter_id: m.matter_id, choice: s.value }] : []));
      return field(`${m.matter_id} ${m.title}`, s);
    }
    const blank = h('input', { type: 'checkbox', name: `paper-${m.matter_id}-invalid` });
    const marks = m.candidates.map((c) => [c, select(`paper-${m.matter_id}-${c.candidate_id}`, MARKS, '')]);
    readers.push(() => {
      if (blank.checked) return [{ matter_id: m.matter_id, choice: 'invalid' }];
      const chosen = Object.fromEntries(marks.filter(([, s]) => s.value).map(([c, s]) => [c.candidate_id, s.value]));
      return Object.keys(chosen).length ? [{ matter_id: m.matter_id, marks: chosen }] : [];
    });
    return h('fieldset', {}, h('legend', {}, `${m.matter_id} ${m.title}`),
      h('div', { class: 'row three' }, marks.map(([c, s]) => field(c.name, s))), h('label', { class: 'inline' }, blank, '此项空白或无法辨认'));
  });
  return { nodes, read: () => readers.flatMap((r) => r()) };
}

async function paperCard(ctx, doc) {
  const out = msg('paper-msg');
  const base = `${meetingPath(ctx.cid, ctx.mid)}/paper`;
  const building = input({ name: 'paper-building', placeholder: '楼栋（不填则全部）' });
  const code = input({ name: 'paper-code', placeholder: '扫描或输入选票上的选票码' });
  const voter = input({ name: 'paper-voter', placeholder: '选票码无法辨认时填业主编号' });
  const date = input({ type: 'date', name: 'paper-date', value: todayBeijing() });
  const votes = paperVotesForm(doc);
  const sheets = h('div', { 'data-testid': 'paper-sheets' });
  const loadSheets = async () => {
    clear(sheets);
    const list = await get(base);
    const c = list.counts || {};
    sheets.appendChild(h('p', {}, `待第二人录入 ${c.pending || 0} 张 · 一致已计入 ${c.matched || 0} 张 · 不一致待复核 ${c.mismatch || 0} 张 · 已复核 ${c.resolved || 0} 张`));
    const review = list.sheets.filter((s) => s.status === 'mismatch');
    if (review.length) {
      sheets.appendChild(table(['选票', '业主', '不一致之处', '复核'], review.map((s) => [s.paper_id, s.voter_id, (s.differences || []).join('、'),
        h('span', {}, ['entry1', 'entry2'].map((d, i) => action(`以第 ${i + 1} 次为准`, out, async () => {
          const done = await confirmStep('复核纸质选票', `对照原件，以第 ${i + 1} 次录入为准？`, { input: '复核说明',
            run: (note) => post(`${base}/${s.paper_id}/resolve`, { decision: d, note }) });
          if (done) await loadSheets();
        }, { class: 'small secondary' })))])));
    }
  };
  const card = h('section', { class: 'card', 'data-testid': 'paper' }, h('h2', {}, '纸质选票'),
    h('p', { class: 'hint' }, '不方便用手机的业主可以用纸质选票。收回的每张选票由两位工作人员各录入一次；两次一致才计入，不一致时由复核人对照原件决定。'),
    h('h3', {}, '打印纸质选票'), field('楼栋', building),
    action('打印纸质选票（PDF）', out, async () => {
      const resp = await call('POST', `${base}/ballots`, { json: building.value.trim() ? { building: building.value.trim() } : {}, raw: true });
      await saveResponse(resp, `${ctx.mid}-paper-ballots.pdf`);
      showOk(out, `已下载 ${resp.headers.get('X-Ballots') || ''} 张纸质选票。注意：打印时这些户的选票码已重新发放，旧二维码失效。`);
    }, { class: 'secondary' }),
    h('h3', {}, '录入收回的选票'), h('div', { class: 'row' }, field('选票码', code), field('业主编号', voter)),
    field('选票上填写的日期', date), ...votes.nodes,
    action('提交本次录入', out, async () => {
      const body = { votes: votes.read(), paper_date: date.value || null };
      if (code.value.trim()) body.code = code.value.trim(); else body.voter_id = voter.value.trim();
      const r = await post(`${base}/entries`, body);
      showOk(out, `第 ${r.paper_id} 张选票（${r.voter_id}）第 ${r.entry_no} 次录入：${r.status_name}${r.differences && r.differences.length ? `（不一致：${r.differences.join('、')}）` : ''}`);
      code.value = ''; voter.value = '';
      await loadSheets();
    }, { 'data-testid': 'paper-submit' }), out, sheets);
  try { await loadSheets(); } catch (e) { showError(out, e); }
  return card;
}

async function proxiesCard(ctx, doc) {
  const out = msg('proxies-msg');
  const base = `${meetingPath(ctx.cid, ctx.mid)}/proxies`;
  const listBox = h('div', {});
  const load = async () => {
    clear(listBox);
    const list = (await get(base)).authorizations;
    listBox.appendChild(list.length ? table(['委托人', '代理人', '类型', '有效期至', '书面委托', '状态', ''], list.map((a) => [a.owner_voter_id, a.proxy_voter_id, a.kind_name,
      beijing(a.valid_until), a.document_ref, a.revoked_at ? `已撤销（${a.revoke_reason || ''}）` : a.live ? '有效' : '已过期',
      a.revoked_at ? '' : action('撤销', out, async () => {
        const done = await confirmStep('撤销委托', `撤销 ${a.owner_voter_id} 对 ${a.proxy_voter_id} 的委托？`, { input: '撤销原因',
          run: (reason) => post(`${base}/${a.authorization_id}/revoke`, { reason }) });
        if (done) await load();
      }, { class: 'small secondary' })]), { 'data-testid': 'proxy-list' }) : h('p', { class: 'hint' }, '没有登记委托。'));
  };
  const owner = input({ name: 'proxy-owner', placeholder: '委托人（业主编号）' });
  const proxy = input({ name: 'proxy-proxy', placeholder: '代理人（另一位业主的编号）' });
  const kind = select('proxy-kind', [['proxy', '书面委托代理'], ['guardian', '监护人代为表决']], 'proxy');
  const until = input({ type: 'datetime-local', name: 'proxy-until' });
  const ref = input({ name: 'proxy-ref', placeholder: '委托书编号或存放位置' });
  const note = input({ name: 'proxy-note' });
  const card = h('section', { class: 'card', 'data-testid': 'proxies' }, h('h2', {}, '委托投票'),
    h('p', { class: 'hint' }, '业主可书面委托本小区另一位业主代为投票；无民事行为能力的业主由监护人代为表决。代理人用自己的选票码登录后代为投票。'),
    listBox, h('details', {}, h('summary', {}, '＋ 登记委托'),
      h('div', { class: 'row' }, field('委托人', owner), field('代理人', proxy)), h('div', { class: 'row' }, field('类型', kind), field('有效期至（北京时间）', until)),
      field('书面委托书', ref), field('备注', note),
      action('登记委托', out, async () => {
        await post(base, { owner_voter_id: owner.value.trim(), proxy_voter_id: proxy.value.trim(), kind: kind.value,
          valid_until: fromLocalInput(until.value) || doc.closes_at, document_ref: ref.value, note: note.value });
        showOk(out, '已登记。');
        await load();
      })), out);
  try { await load(); } catch (e) { showError(out, e); }
  return card;
}

export async function votingStep(ctx, doc, reload) {
  const box = h('div', {});
  if (doc.state === 'draft') {
    box.appendChild(h('p', { class: 'msg warn' }, '会议还是草稿：请先添加议题并发布会议通知。'));
    return box;
  }
  if (doc.state === 'noticed') box.appendChild(openCard(ctx, doc, reload));
  box.appendChild(dashboardCard(ctx));
  if (doc.state === 'open' || doc.state === 'noticed') {
    box.appendChild(await canvassCard(ctx));
    box.appendChild(await paperCard(ctx, doc));
    box.appendChild(await proxiesCard(ctx, doc));
  } else {
    box.appendChild(h('p', { class: 'hint' }, '投票已结束。纸质选票录入和委托登记只在投票期间进行。'));
  }
  return box;
}
