// ④ 结束与公布: extension, close at the noticed time, void with a reason, the result, publication
// with an objection period, objections and responses, and the final result.
import { get, post, meetingPath } from './api.js';
import { h, msg, showError, action, field, input, confirmStep, table, beijing, fromLocalInput, toLocalInput } from './ui.js';
import { printLinks } from './draft.js';

const OUTCOMES = { passed: '通过', failed: '未通过', rejected: '未通过', no_quorum: '参与表决未达法定比例，未通过', elected: '已选出', runoff: '需另行选举' };
const fig = (f) => (f ? `${f.area} 平方米 / ${f.persons} 人` : '—');

function openCards(ctx, doc, reload) {
  const base = meetingPath(ctx.cid, ctx.mid);
  const extOut = msg('extension-msg');
  const newClose = input({ type: 'datetime-local', name: 'extension-closes-at', value: toLocalInput(doc.closes_at) });
  const used = (doc.extensions || []).length;
  const ext = h('section', { class: 'card', 'data-testid': 'extension' }, h('h2', {}, '延期'),
    h('p', { class: 'hint' }, `参与表决未达法定比例时，可在投票结束前发布延期公告。本会议规则允许延期 ${doc.max_extensions} 次、合计 ${doc.max_extension_days} 天；已延期 ${used} 次。`),
    (doc.extensions || []).length ? table(['次序', '原结束时间', '新结束时间', '原因'], doc.extensions.map((e) => [e.number, beijing(e.previous_closes_at), beijing(e.closes_at), e.reason])) : null,
    field('新的投票结束时间（北京时间）', newClose),
    action('发布延期公告', extOut, async () => {
      const done = await confirmStep('发布延期公告', `把投票结束时间延到 ${newClose.value.replace('T', ' ')}（北京时间）？延期公告发布后不能撤回。`, {
        input: '延期原因', ok: '发布延期公告', run: (reason) => post(`${base}/extensions`, { closes_at: fromLocalInput(newClose.value), reason }) });
      if (done) reload();
    }, { class: 'secondary', 'data-testid': 'extend' }), extOut, printLinks(ctx, ['extension']));
  const closeOut = msg('close-msg');
  const close = h('section', { class: 'card', 'data-testid': 'close' }, h('h2', {}, '结束投票'),
    h('p', { class: 'hint' }, `投票在通知写明的时间（${beijing(doc.closes_at)}）自动结束；结束时间到了以后也可以手动结束。不能提前结束。`),
    action('结束投票', closeOut, async () => {
      const done = await confirmStep('结束投票', '结束投票并计票？结束后业主不能再投票。', { ok: '结束投票', run: () => post(`${base}/close`) });
      if (done) reload();
    }, { 'data-testid': 'close-meeting' }), closeOut);
  return [ext, close];
}

function voidCard(ctx, doc, reload) {
  const out = msg('void-msg');
  return h('section', { class: 'card', 'data-testid': 'void' }, h('h2', {}, '宣布会议作废'),
    h('p', { class: 'hint' }, '只在会议程序有严重问题时使用（例如通知有误）。作废后不产生表决结果，不能恢复。'),
    action('宣布作废', out, async () => {
      const done = await confirmStep('宣布会议作废', `宣布“${doc.title}”作废？此操作不能撤销，原因会公开。`, { input: '作废原因', ok: '确认作废',
        run: (reason) => post(`${meetingPath(ctx.cid, ctx.mid)}/void`, { reason }) });
      if (done) reload();
    }, { class: 'danger', 'data-testid': 'void-meeting' }), out);
}

function resultTable(doc, result) {
  const titles = Object.fromEntries((doc.matters || []).map((m) => [m.matter_id, m.title]));
  const names = Object.fromEntries((doc.matters || []).flatMap((m) => (m.candidates || []).map((c) => [`${m.matter_id}/${c.candidate_id}`, c.name])));
  return table(['议题', '参与表决', '赞成', '结果'], (result.matters || []).map((m) => [
    `${m.id} ${titles[m.id] || ''}`, fig(m.participating),
    m.kind === 'election' ? (m.candidates || []).map((c) => `${names[`${m.id}/${c.id}`] || c.id} ${c.yes.persons} 人`).join('；') : fig(m.yes),
    OUTCOMES[m.outcome] || m.outcome || '']), { 'data-testid': 'result-table' });
}

function objectionsCard(ctx, res, reload) {
  const base = meetingPath(ctx.cid, ctx.mid);
  const out = msg('objections-msg');
  const text = h('textarea', { name: 'objection-text', rows: 3, maxlength: 2000 });
  const who = input({ name: 'objection-owner', placeholder: '例如 3 栋 402 业主' });
  const preliminary = res.status === 'preliminary';
  return h('section', { class: 'card', 'data-testid': 'objections' }, h('h2', {}, `异议（${res.objections.length} 条）`),
    h('p', { class: 'hint' }, preliminary ? `异议期至 ${beijing(res.objection_ends_at)}。业主可在结果页或选票页提出异议；书面或当面提出的，由工作人员代为登记。每条异议都须答复后才能确定最终结果。` : '异议期已结束。'),
    res.objections.length ? h('div', { 'data-testid': 'objection-list' }, res.objections.map((o) => h('div', { class: 'matter', 'data-objection': o.objection_id },
      h('p', {}, h('strong', {}, `第 ${o.objection_id} 条`), `（${beijing(o.created_at)}${o.on_behalf_of ? `，${o.on_behalf_of}` : ''}）：${o.text}`),
      o.response ? h('p', { class: 'msg ok' }, `答复（${beijing(o.responded_at)}）：${o.response}`)
        : preliminary ? action('答复', out, async () => {
          const done = await confirmStep('答复异议', o.text, { input: '答复内容', ok: '提交答复（公开）',
            run: (response) => post(`${base}/objections/${o.objection_id}/response`, { response }) });
          if (done) reload();
        }, { class: 'small', 'data-respond': o.objection_id }) : null))) : null,
    preliminary ? h('details', {}, h('summary', {}, '＋ 代业主登记异议'), field('提出人', who), field('异议内容', text),
      action('登记异议', out, async () => {
        await post(`${base}/objections`, { text: text.value, on_behalf_of: who.value.trim() });
        reload();
      }, { 'data-testid': 'add-objection' })) : null, out);
}

async function resultCards(ctx, doc, reload) {
  const base = meetingPath(ctx.cid, ctx.mid);
  const out = msg('result-msg');
  const cards = [];
  let res;
  try { res = await get(`${base}/result`); } catch (e) {
    showError(out, e);
    return [h('section', { class: 'card' }, h('h2', {}, '表决结果'), h('p', { class: 'hint' }, '结果在投票结束后几秒内自动计出并签名。'),
      action('刷新', out, async () => reload(), { class: 'secondary' }), out)];
  }
  const pub = `/r/${encodeURIComponent(ctx.cid)}/${encodeURIComponent(ctx.mid)}`;
  const card = h('section', { class: 'card', 'data-testid': 'result' }, h('h2', {}, '表决结果 ', h('span', { class: 'badge', 'data-result-status': res.status }, res.status_name)),
    h('p', {}, `总面积 ${fig(res.result.totals)} · 已签名 ${beijing(res.signed_at)} · 回执 ${res.receipt_count} 张`), resultTable(doc, res.result));
  if (res.status === 'unpublished') {
    const days = input({ type: 'number', name: 'objection-days', min: 1, max: 60, value: 7 });
    card.appendChild(h('div', {}, h('h3', {}, '公布结果'),
      h('p', { class: 'hint' }, '公布后结果对所有人公开（业主可核对自己的回执，任何人可下载记录重新计票），并进入异议期。'),
      field('异议期（天）', days),
      action('公布结果', out, async () => {
        const done = await confirmStep('公布表决结果', `公布结果，异议期 ${days.value} 天？公布后不能撤回。`, { ok: '公布',
          run: () => post(`${base}/publish`, { objection_days: Number(days.value) }) });
        if (done) reload();
      }, { class: 'danger', 'data-testid': 'publish-result' })));
  } else {
    card.appendChild(h('p', {}, h('a', { href: pub, target: '_blank', rel: 'noopener', 'data-testid': 'public-link' }, '打开公开结果页'),
      ` · 公布于 ${beijing(res.published_at)}`, res.finalized_at ? ` · 最终结果确定于 ${beijing(res.finalized_at)}` : ''));
  }
  card.appendChild(out);
  card.appendChild(printLinks(ctx, ['results']));
  cards.push(card);
  if (res.status !== 'unpublished') cards.push(objectionsCard(ctx, res, reload));
  if (res.status === 'preliminary') {
    const fout = msg('finalize-msg');
    cards.push(h('section', { class: 'card', 'data-testid': 'finalize' }, h('h2', {}, '确定最终结果'),
      h('p', { class: 'hint' }, `异议期（至 ${beijing(res.objection_ends_at)}）结束、每条异议都已答复后，确定最终结果。`),
      action('确定最终结果', fout, async () => {
        const done = await confirmStep('确定最终结果', '确定后结果成为最终结果，不再接受异议。', { ok: '确定最终结果', run: () => post(`${base}/finalize`) });
        if (done) reload();
      }, { class: 'danger', 'data-testid': 'finalize-result' }), fout));
  }
  if (res.status === 'final' && (doc.matters || []).some((m) => m.kind === 'election')) {
    cards.push(h('section', { class: 'card' }, h('h2', {}, '下一步：组成业主委员会'),
      h('p', { class: 'hint' }, '当选名单已自动登记。到“业委会”登记首次会议、备案、印章和任期；下面可打印公告和备案材料。'),
      h('a', { class: 'button', href: `${ctx.home}/committee`, 'data-testid': 'to-committee' }, '前往“业委会”'),
      printLinks(ctx, ['committee', 'filing'])));
  }
  return cards;
}

export async function closingStep(ctx, doc, reload) {
  const box = h('div', {});
  if (doc.state === 'draft' || doc.state === 'noticed') {
    box.appendChild(h('p', { class: 'msg warn' }, '投票还没有开始。'));
    if (doc.state === 'noticed') box.appendChild(voidCard(ctx, doc, reload));
    return box;
  }
  if (doc.state === 'open') {
    for (const c of openCards(ctx, doc, reload)) box.appendChild(c);
    box.appendChild(voidCard(ctx, doc, reload));
    return box;
  }
  if (doc.state === 'voided') {
    box.appendChild(h('p', { class: 'msg error' }, `会议已于 ${beijing(doc.voided_at)} 宣布作废：${doc.void_reason}`));
    return box;
  }
  for (const c of await resultCards(ctx, doc, reload)) box.appendChild(c);
  return box;
}

