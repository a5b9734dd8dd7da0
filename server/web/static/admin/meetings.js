// 会议: the community's meetings, and a new meeting (title, voting window, rules).
import { call, get, admin } from './api.js';
import { h, msg, showError, field, input, select, beijing, stateBadge, fromLocalInput, toLocalInput } from './ui.js';

export const RULE_LABELS = {
  count_parking_area: ['车位面积计入专有部分面积', null],
  allow_revision: ['允许业主在投票期内修改已投的票', null],
  duplicate_policy: ['同一户既投纸质票又投电子票时', [['electronic_prevails', '以电子票为准'], ['first_received', '以先收到的为准']]],
  rank_by: ['选举得票相同时的排序', [['persons_then_area', '先比人数，再比面积'], ['area_then_persons', '先比面积，再比人数']]],
  invalid_ballot: ['空白或无法辨认的选票', [['abstain', '计为参与表决、弃权'], ['not_counted', '不计入该事项的参与表决']]],
};

// The rules as form controls (the server checks them); read() gives the rules object.
export function rulesFields(rules) {
  const controls = {};
  const nodes = Object.entries(RULE_LABELS).map(([key, [label, options]]) => {
    if (!options) {
      const box = h('input', { type: 'checkbox', name: `rule-${key}`, checked: !!(rules && rules[key]) });
      controls[key] = () => box.checked;
      return h('label', { class: 'inline' }, box, label);
    }
    const s = select(`rule-${key}`, options, rules ? rules[key] : options[0][0]);
    controls[key] = () => s.value;
    return field(label, s);
  });
  return { nodes, read: () => Object.fromEntries(Object.entries(controls).map(([k, f]) => [k, f()])) };
}

export function windowFields(doc) {
  const soon = new Date(Date.now() + 16 * 86400000);
  soon.setUTCHours(1, 0, 0, 0);            // 09:00 Beijing time, 16 days from now
  const end = new Date(soon.getTime() + 14 * 86400000 + 11 * 3600000);   // 14 days later, 20:00
  const opens = input({ type: 'datetime-local', name: 'opens_at', value: toLocalInput(doc ? doc.opens_at : soon.toISOString()) });
  const closes = input({ type: 'datetime-local', name: 'closes_at', value: toLocalInput(doc ? doc.closes_at : end.toISOString()) });
  const maxExt = input({ type: 'number', name: 'max_extensions', min: 0, max: 10, value: doc ? doc.max_extensions : 1 });
  const maxDays = input({ type: 'number', name: 'max_extension_days', min: 0, max: 365, value: doc ? doc.max_extension_days : 15 });
  return {
    nodes: [h('div', { class: 'row' }, field('投票开始（北京时间）', opens, '须在通知发布 15 日以后'), field('投票结束（北京时间）', closes)),
      h('div', { class: 'row' }, field('最多可延期几次', maxExt, '0 表示不允许延期'), field('延期合计最多几天', maxDays))],
    read: () => ({ opens_at: fromLocalInput(opens.value), closes_at: fromLocalInput(closes.value),
      max_extensions: Number(maxExt.value || 0), max_extension_days: Number(maxDays.value || 0) }),
  };
}

export async function meetingsScreen(ctx) {
  const box = h('div', { 'data-screen': 'meetings' });
  box.appendChild(h('a', { class: 'button', href: `${ctx.home}/new`, 'data-testid': 'new-meeting' }, '＋ 新建会议'));
  const meetings = (await get(`${admin(ctx.cid)}/meetings`)).meetings;
  if (!meetings.length) {
    box.appendChild(h('p', { class: 'hint' }, '还没有会议。先在“业主名册”导入名册，再新建会议。'));
    return box;
  }
  box.appendChild(h('ul', { class: 'list', 'data-testid': 'meetings' }, meetings.map((m) => h('li', {},
    h('a', { href: `${ctx.home}/m/${encodeURIComponent(m.meeting_id)}`, 'data-meeting': m.meeting_id },
      h('strong', {}, m.title), stateBadge(m.state, m.state_name), h('br'),
      h('span', { class: 'hint' }, `${m.matter_count ?? ''} 个议题 · 投票 ${beijing(m.opens_at)} 至 ${beijing(m.closes_at)}`))))));
  return box;
}

export async function newMeetingScreen(ctx) {
  const out = msg('new-meeting-msg');
  const title = input({ name: 'title', required: true, maxlength: 200, placeholder: '例如：2026 年第一次业主大会' });
  const mid = input({ name: 'meeting_id', maxlength: 64, placeholder: '可不填，自动生成' });
  const win = windowFields(null);
  const rules = rulesFields(null);
  const submit = h('button', { type: 'submit', 'data-testid': 'create-meeting' }, '创建会议（草稿）');
  const form = h('form', { class: 'card', 'data-screen': 'new-meeting' },
    h('h2', {}, '新建会议'),
    h('p', { class: 'hint' }, '先建草稿，再添加议题、附件和候选人；核对无误后发布会议通知。通知发布后，议题和规则就不能再改。'),
    field('会议名称', title), field('会议编号（字母、数字、- 或 _）', mid), ...win.nodes,
    h('h3', {}, '表决规则'), ...rules.nodes, submit, out);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    submit.disabled = true;
    try {
      const body = { title: title.value, rules: rules.read(), ...win.read() };
      if (mid.value.trim()) body.meeting_id = mid.value.trim();
      const doc = await call('POST', `${admin(ctx.cid)}/meetings`, { json: body });
      location.hash = `${ctx.home}/m/${encodeURIComponent(doc.meeting_id)}`;
    } catch (err) { showError(out, err); } finally { submit.disabled = false; }
  });
  return form;
}
