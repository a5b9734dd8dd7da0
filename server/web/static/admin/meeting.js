// One meeting: its facts, and the steps from drafting to the final result.
import { get, meetingPath } from './api.js';
import { h, facts, beijing, stateBadge } from './ui.js';
import { prepareStep } from './draft.js';
import { codesStep } from './codes.js';
import { votingStep } from './voting.js';
import { closingStep } from './closing.js';

const STEPS = [
  ['prepare', '① 议题与通知', prepareStep],
  ['codes', '② 选票二维码', codesStep],
  ['voting', '③ 投票期间', votingStep],
  ['closing', '④ 结束与公布', closingStep],
];
const DEFAULT_STEP = { draft: 'prepare', noticed: 'codes', open: 'voting', closed: 'closing', published: 'closing', voided: 'closing' };

export async function meetingScreen(ctx) {
  const doc = await get(meetingPath(ctx.cid, ctx.mid));
  const step = STEPS.find((s) => s[0] === ctx.step) || STEPS.find((s) => s[0] === DEFAULT_STEP[doc.state]) || STEPS[0];
  const base = `${ctx.home}/m/${encodeURIComponent(ctx.mid)}`;
  const box = h('div', { 'data-screen': `meeting-${step[0]}`, 'data-meeting-state': doc.state });
  box.appendChild(h('h1', {}, doc.title, ' ', stateBadge(doc.state, doc.state_name)));
  box.appendChild(facts([
    ['会议编号', doc.meeting_id],
    ['投票时间', `${beijing(doc.opens_at)} 至 ${beijing(doc.closes_at)}`],
    ['通知发布', doc.noticed_at ? beijing(doc.noticed_at) : '尚未发布'],
    ['业主名册', doc.register_version ? `第 ${doc.register_version} 版（通知发布时冻结）` : '通知发布时冻结最新一版'],
    ['总面积 / 总人数', doc.totals ? `${doc.totals.area} 平方米 / ${doc.totals.persons} 人` : '—'],
  ].concat(doc.voided_at ? [['作废', `${beijing(doc.voided_at)}：${doc.void_reason}`]] : [])));
  box.appendChild(h('nav', { class: 'tabs' }, STEPS.map(([key, label]) =>
    h('a', { href: `${base}/${key}`, class: key === step[0] ? 'on' : '', 'data-step': key }, label))));
  const reload = () => ctx.refresh();
  box.appendChild(await step[2]({ ...ctx, base }, doc, reload));
  return box;
}
