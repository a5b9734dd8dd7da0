// 业委会: forming the committee from a closed election, its first meeting, filing, seal, term,
// members leaving (an alternate takes the seat), and the legal deadlines.
import { get, post, admin, meetingPath } from './api.js';
import { h, msg, showError, action, field, input, select, confirmStep, table, beijing, todayBeijing, clear } from './ui.js';

const DEADLINE_STATES = { done: '已完成', overdue: '已逾期', due_soon: '即将到期', on_time: '未到期' };
const ROLES = { member: '委员', alternate: '候补委员' };
const OFFICES = { chair: '主任', vice_chair: '副主任' };

async function deadlinesCard(ctx) {
  const out = msg('deadlines-msg');
  const card = h('section', { class: 'card', 'data-testid': 'deadlines' }, h('h2', {}, '法定期限'), out);
  try {
    const doc = await get(`${admin(ctx.cid)}/deadlines`);
    const items = (doc.communities || []).flatMap((c) => c.deadlines);
    card.appendChild(h('p', { class: 'hint' }, `今天是 ${doc.today}；${doc.due_soon_days} 天内到期的标为“即将到期”。`));
    card.appendChild(items.length ? table(['事项', '期限', '状态', '完成日期'], items.map((d) => [
      (d.body_name ? `${d.body_name}：` : '') + d.name, d.due, DEADLINE_STATES[d.state] || d.state, d.done_on ? `${d.done_on}${d.done_late ? '（逾期完成）' : ''}` : '']), { 'data-testid': 'deadline-list' })
      : h('p', { class: 'hint' }, '暂无期限。'));
  } catch (e) { showError(out, e); }
  return card;
}

async function formCard(ctx, reload) {
  const out = msg('form-committee-msg');
  const meetings = (await get(`${admin(ctx.cid)}/meetings`)).meetings.filter((m) => m.state === 'closed' || m.state === 'published');
  const card = h('section', { class: 'card', 'data-testid': 'form-committee' }, h('h2', {}, '根据选举结果组成'),
    h('p', { class: 'hint' }, '投票结束后，系统按选举结果自动登记当选委员和候补委员；也可以在这里按某次会议的选举议题重新核对组成（另行选举的结果会合并进来）。'));
  if (!meetings.length) { card.appendChild(h('p', { class: 'hint' }, '还没有已结束的会议。')); return card; }
  const meeting = select('committee-meeting', meetings.map((m) => [m.meeting_id, m.title]), meetings[0].meeting_id);
  const matter = h('select', { name: 'committee-matter' });
  const loadMatters = async () => {
    clear(matter);
    const doc = await get(meetingPath(ctx.cid, meeting.value));
    for (const m of doc.matters.filter((x) => x.kind === 'election')) matter.appendChild(h('option', { value: m.matter_id }, `${m.matter_id} ${m.title}`));
  };
  meeting.addEventListener('change', () => loadMatters().catch((e) => showError(out, e)));
  await loadMatters().catch((e) => showError(out, e));
  card.append(field('会议', meeting), field('选举议题', matter), action('组成 / 核对', out, async () => {
    if (!matter.value) throw new Error('该会议没有选举议题');
    await post(`${admin(ctx.cid)}/committees`, { meeting_id: meeting.value, matter_id: matter.value });
    reload();
  }, { 'data-testid': 'form-committee-submit' }), out);
  return card;
}

function memberRows(ctx, c, out, reload) {
  const base = `${admin(ctx.cid)}/committees/${c.committee_id}`;
  const rows = [...c.members, ...c.alternates].map((m) => [m.member_no, m.name, m.unit_label, ROLES[m.role] || m.role, OFFICES[m.office] || '',
    m.party_member ? '是' : '',
    action('离任', out, async () => {
      const done = await confirmStep('委员离任', `${m.name} 离任？${m.role === 'member' ? '第一位候补委员将按得票顺序当日递补。' : ''}`, { input: '离任原因',
        ok: '确认离任', run: (reason) => post(`${base}/members/${m.member_no}/leave`, { left_on: todayBeijing(), reason }) });
      if (done) reload();
    }, { class: 'small secondary', 'data-leave': m.member_no })]);
  return table(['编号', '姓名', '房号', '身份', '职务', '党员', ''], rows, { 'data-testid': `members-${c.committee_id}` });
}

function stepsFor(ctx, c, reload) {
  const base = `${admin(ctx.cid)}/committees/${c.committee_id}`;
  const out = msg(`committee-steps-${c.committee_id}`);
  const seated = c.members.map((m) => [String(m.member_no), `${m.member_no} ${m.name}`]);
  const held = input({ type: 'date', name: 'first-meeting-date', value: todayBeijing() });
  const chair = select('chair', seated, seated.length ? seated[0][0] : '');
  const vices = c.members.map((m) => h('label', { class: 'inline' }, h('input', { type: 'checkbox', name: 'vice', value: m.member_no }), m.name));
  const filed = input({ type: 'date', name: 'filing-date', value: todayBeijing() });
  const ref = input({ name: 'filing-ref', placeholder: '备案文号' });
  const seal = select('seal', [['none', '未刻制'], ['applied', '已申请刻制'], ['made', '已刻制']], c.seal_status);
  const start = input({ type: 'date', name: 'term-start', value: c.term ? c.term.start : todayBeijing() });
  const end = input({ type: 'date', name: 'term-end', value: c.term ? c.term.end : '' });
  return h('div', {},
    h('details', { open: !c.first_meeting_on }, h('summary', {}, `首次会议${c.first_meeting_on ? `（${c.first_meeting_on}，主任 ${c.chair}）` : '（选举产生之日起 3 日内）'}`),
      field('会议日期', held), field('主任', chair), h('div', {}, h('span', { class: 'name' }, '副主任'), vices),
      action('登记首次会议', out, async () => {
        await post(`${base}/first-meeting`, { held_on: held.value, chair: Number(chair.value),
          vice_chairs: vices.map((l) => l.firstChild).filter((x) => x.checked).map((x) => Number(x.value)) });
        reload();
      }, { 'data-testid': 'first-meeting' })),
    h('details', {}, h('summary', {}, `备案${c.filing ? `（${c.filing.date}，${c.filing.reference}）` : '（选举产生之日起 30 日内）'}`),
      h('div', { class: 'row' }, field('备案日期', filed), field('备案文号', ref)),
      action('登记备案', out, async () => { await post(`${base}/filing`, { filing_date: filed.value, filing_ref: ref.value }); reload(); }, { 'data-testid': 'filing' })),
    h('details', {}, h('summary', {}, `印章（${c.seal_status_name}）`), field('印章状态', seal),
      action('保存印章状态', out, async () => { await post(`${base}/seal`, { seal_status: seal.value }); reload(); }, { 'data-testid': 'seal' })),
    h('details', {}, h('summary', {}, `任期${c.term ? `（${c.term.start} 至 ${c.term.end}）` : ''}`),
      h('div', { class: 'row' }, field('任期开始', start), field('任期结束', end, '每届 3 至 5 年')),
      action('保存任期', out, async () => { await post(`${base}/term`, { term_start: start.value, term_end: end.value }); reload(); }, { 'data-testid': 'term' })),
    out);
}

function committeeCard(ctx, c, reload) {
  const out = msg(`committee-msg-${c.committee_id}`);
  const card = h('section', { class: 'card', 'data-committee': c.committee_id, 'data-formed': c.formed ? '1' : '0' },
    h('h2', {}, `${c.body_name}（会议 ${c.meeting_id} · 议题 ${c.matter_id}）`),
    h('p', {}, c.formed ? `已组成：${c.seats} 个席位，空缺 ${c.vacant_seats} 个；选举产生于 ${c.elected_on}。` : `尚未组成：${c.reason}`),
    c.pending_runoff ? h('p', { class: 'msg warn' }, '有席位需要另行选举。') : null);
  if (c.members.length || c.alternates.length) card.appendChild(memberRows(ctx, c, out, reload));
  if (c.former.length) card.appendChild(h('p', { class: 'hint' }, `已离任：${c.former.map((m) => `${m.name}（${m.left_on}，${m.leave_reason}）`).join('；')}`));
  if (c.formed) card.appendChild(stepsFor(ctx, c, reload));
  if (c.events && c.events.length) {
    card.appendChild(h('details', {}, h('summary', {}, '记录'), table(['时间', '事项'], c.events.map((e) => [beijing(e.at), e.summary]))));
  }
  card.appendChild(out);
  return card;
}

export async function committeeScreen(ctx) {
  const box = h('div', { 'data-screen': 'committee' });
  const reload = () => ctx.refresh();
  const list = (await get(`${admin(ctx.cid)}/committees`)).committees;
  if (!list.length) box.appendChild(h('p', { class: 'hint' }, '还没有业主委员会或监事会的记录。选举会议投票结束后会自动登记。'));
  for (const c of list) box.appendChild(committeeCard(ctx, c, reload));
  box.appendChild(await formCard(ctx, reload));
  box.appendChild(await deadlinesCard(ctx));
  return box;
}
