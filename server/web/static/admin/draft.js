// ① 议题与通知: matters from templates (the art. 278 category fixed by the template), scope,
// candidates and nominations, attached documents, rules and window, and publishing the notice.
import { call, get, post, admin, meetingPath, download } from './api.js';
import { h, msg, showError, setFlash, action, field, input, select, confirmStep, table, beijing } from './ui.js';
import { rulesFields, windowFields } from './meetings.js';
import { attachmentsCard } from './attachments.js';

const BODY_NAMES = { committee: '业主委员会', supervisory: '监事会', other: '其他' };

async function buildingsOf(cid) {
  try { return (await get(`${admin(cid)}/register/totals`)).buildings.map((b) => b.building); } catch (e) { return []; }
}

function scopeText(scope) { return scope && scope.buildings ? `仅 ${scope.buildings.join('、')} 栋业主表决` : '全体业主表决'; }

function candidateRows(ctx, doc, matter, draft, out, reload) {
  const rows = (matter.candidates || []).map((c) => [c.candidate_id, c.name, c.unit_label, c.party_member ? '是' : '否',
    draft ? action('删除', out, async () => {
      const ok = await confirmStep('删除候选人', `从“${matter.title}”中删除候选人 ${c.name}？`, { ok: '删除' });
      if (!ok) return;
      await call('DELETE', `${meetingPath(ctx.cid, ctx.mid)}/matters/${matter.matter_id}/candidates/${c.candidate_id}`);
      reload();
    }, { class: 'small secondary' }) : '']);
  return rows.length ? table(['编号', '姓名', '房号', '党员', ''], rows, { 'data-testid': `candidates-${matter.matter_id}` })
    : h('p', { class: 'hint' }, '还没有候选人。');
}

function mattersCard(ctx, doc, reload) {
  const draft = doc.state === 'draft';
  const out = msg('matters-msg');
  const card = h('section', { class: 'card', 'data-testid': 'matters' }, h('h2', {}, `议题（${doc.matters.length} 项）`));
  if (!doc.matters.length) card.appendChild(h('p', { class: 'hint' }, '还没有议题。请在下面从模板添加。'));
  for (const m of doc.matters) {
    const box = h('div', { class: 'matter', 'data-matter': m.matter_id },
      h('div', { class: 'title' }, `${m.matter_id}　${m.title}`),
      h('div', { class: 'hint' }, `民法典第二百七十八条第 ${m.category} 项（${m.category_name}）· 通过标准：${m.threshold_name} · ${scopeText(m.scope)}`),
      m.description ? h('p', {}, m.description) : null);
    if (m.kind === 'election') {
      box.appendChild(h('p', {}, `选举${BODY_NAMES[m.body] || ''}：应选 ${m.seats} 人，候补 ${m.alternates} 人`));
      box.appendChild(candidateRows(ctx, doc, m, draft, out, reload));
      if (draft) box.appendChild(h('p', { class: 'hint' }, '候选人须先经提名和资格审查：见下方“候选人提名与资格审查”。'));
    }
    if (draft) {
      box.appendChild(action('删除议题', out, async () => {
        const ok = await confirmStep('删除议题', `删除议题“${m.title}”？`, { ok: '删除' });
        if (!ok) return;
        await call('DELETE', `${meetingPath(ctx.cid, ctx.mid)}/matters/${m.matter_id}`);
        reload();
      }, { class: 'small secondary' }));
    }
    card.appendChild(box);
  }
  card.appendChild(out);
  return card;
}

async function addMatterCard(ctx, reload) {
  const out = msg('add-matter-msg');
  const { templates } = await get('/api/admin/matter-templates');
  const buildings = await buildingsOf(ctx.cid);
  const pick = select('template', [['', '— 请选择议题类型 —'], ...templates.map((t) => [t.key, t.title])], '');
  const title = input({ name: 'matter-title', maxlength: 200 });
  const desc = h('textarea', { name: 'matter-description', rows: 3, maxlength: 5000 });
  const info = h('p', { class: 'hint', 'data-testid': 'template-info' });
  const seats = input({ type: 'number', name: 'matter-seats', min: 1, max: 11, value: 5 });
  const electionBox = h('div', { hidden: true }, field('应选人数', seats, '业主委员会 5–11 人（单数）；监事会 3–5 人'));
  const whole = h('input', { type: 'radio', name: 'scope', value: 'all', checked: true });
  const some = h('input', { type: 'radio', name: 'scope', value: 'some' });
  const boxes = buildings.map((b) => h('label', { class: 'inline' }, h('input', { type: 'checkbox', name: 'scope-building', value: b }), `${b} 栋`));
  const scopeBox = h('div', { hidden: true }, boxes.length ? boxes : h('p', { class: 'hint' }, '请先导入业主名册，才能选择楼栋。'));
  whole.addEventListener('change', () => { scopeBox.hidden = true; });
  some.addEventListener('change', () => { scopeBox.hidden = false; });
  const chosen = () => templates.find((t) => t.key === pick.value);
  pick.addEventListener('change', () => {
    const t = chosen();
    if (!t) { info.textContent = ''; return; }
    title.value = t.title;
    desc.value = t.description || '';
    info.textContent = `《民法典》第二百七十八条第 ${t.category} 项（${t.category_name}）：${t.quorum_text}，并经${t.threshold_text}。类别和通过比例由模板确定，不能改。`;
    electionBox.hidden = t.kind !== 'election';
    if (t.body === 'supervisory' && Number(seats.value) > 5) seats.value = 3;
  });
  return h('section', { class: 'card', 'data-testid': 'add-matter' }, h('h2', {}, '添加议题'),
    h('p', { class: 'hint' }, '从模板选择议题类型：模板决定《民法典》第二百七十八条的类别和通过标准，不会把需要四分之三的事项误设为过半数。'),
    field('议题类型', pick), info, field('议题名称', title), field('议题说明（业主会看到）', desc), electionBox,
    h('h3', {}, '谁来表决'), h('label', { class: 'inline' }, whole, '全体业主'), h('label', { class: 'inline' }, some, '仅部分楼栋的业主'), scopeBox,
    action('添加议题', out, async () => {
      const t = chosen();
      if (!t) throw new Error('请先选择议题类型');
      const data = { template: t.key, kind: t.kind, category: t.category, threshold: t.threshold, title: title.value, description: desc.value };
      if (t.kind === 'election') Object.assign(data, { body: t.body || 'other', seats: Number(seats.value) });
      if (some.checked) data.scope = { buildings: boxes.map((l) => l.firstChild).filter((c) => c.checked).map((c) => c.value) };
      await post(`${meetingPath(ctx.cid, ctx.mid)}/matters`, data);
      reload();
    }, { 'data-testid': 'add-matter-submit' }), out);
}

async function nominationsCard(ctx, doc, reload) {
  const elections = doc.matters.filter((m) => m.kind === 'election');
  if (!elections.length) return null;
  const out = msg('nominations-msg');
  const card = h('section', { class: 'card', 'data-testid': 'nominations' }, h('h2', {}, '候选人提名与资格审查'),
    h('p', { class: 'hint' }, '业主可在自己的选票页自荐；筹备组也可代为提名。资格审查通过的提名可加入选举议题的候选人。'));
  let list = [];
  try { list = (await get(`${admin(ctx.cid)}/nominations`)).nominations; } catch (e) { showError(out, e); }
  const base = `${admin(ctx.cid)}/nominations`;
  const attached = new Set(elections.flatMap((m) => (m.candidates || []).map((c) => c.candidate_id)));
  const target = select('nominee-matter', elections.map((m) => [m.matter_id, `${m.matter_id} ${m.title}`]), elections[0].matter_id);
  if (list.length) {
    card.appendChild(table(['编号', '机构', '姓名', '房号', '状态', '操作'], list.map((n) => [n.nomination_id, n.body_name, n.name, n.unit_label,
      n.status_name + (n.reason ? `（${n.reason}）` : ''),
      n.status === 'pending' ? h('span', {},
        action('审查通过', out, async () => { await post(`${base}/${n.nomination_id}/qualify`); reload(); }, { class: 'small', 'data-qualify': n.nomination_id }),
        action('不通过', out, async () => {
          const reason = await confirmStep('资格审查不通过', `${n.name} 的提名不通过。请写明理由（会告知被提名人）。`, { input: '理由',
            run: (r) => post(`${base}/${n.nomination_id}/refuse`, { reason: r }) });
          if (reason) reload();
        }, { class: 'small secondary' }))
        : n.status === 'qualified' && attached.has(`N${n.nomination_id}`) ? '已列为候选人'
        : n.status === 'qualified' ? action('加入候选人', out, async () => {
          await post(`${meetingPath(ctx.cid, ctx.mid)}/matters/${target.value}/nominees`, { nomination_ids: [n.nomination_id] });
          reload();
        }, { class: 'small', 'data-attach': n.nomination_id }) : n.status_name]), { 'data-testid': 'nomination-list' }));
    card.appendChild(field('加入到哪个选举议题', target));
  } else card.appendChild(h('p', { class: 'hint' }, '还没有提名。'));
  const owner = input({ name: 'nominate-owner', placeholder: '业主编号（名册中的 owner_id）' });
  const nbody = select('nominate-body', [['committee', '业主委员会'], ['supervisory', '监事会']], 'committee');
  card.appendChild(h('details', { 'data-testid': 'nominate' }, h('summary', {}, '＋ 代业主提名'), h('div', { class: 'row' }, field('业主编号', owner), field('机构', nbody)),
    action('提交提名', out, async () => { await post(base, { owner_id: owner.value.trim(), body: nbody.value }); reload(); }, { 'data-testid': 'nominate-submit' })));
  card.appendChild(out);
  return card;
}

function settingsCard(ctx, doc, reload) {
  const out = msg('settings-msg');
  const title = input({ name: 'edit-title', value: doc.title, maxlength: 200 });
  const win = windowFields(doc);
  const rules = rulesFields(doc.rules);
  return h('section', { class: 'card', 'data-testid': 'meeting-settings' }, h('h2', {}, '会议名称、投票时间与表决规则'),
    field('会议名称', title), ...win.nodes, ...rules.nodes,
    action('保存修改', out, async () => {
      await call('PATCH', meetingPath(ctx.cid, ctx.mid), { json: { title: title.value, rules: rules.read(), ...win.read() } });
      reload();
    }, { class: 'secondary', 'data-testid': 'save-settings' }), out);
}

function noticeCard(ctx, doc, reload) {
  const out = msg('notice-msg');
  return h('section', { class: 'card', 'data-testid': 'notice' }, h('h2', {}, '发布会议通知'),
    h('p', { class: 'hint' }, `发布后：业主名册冻结为最新一版，议题、候选人、附件和规则都不能再修改；投票须在通知发布满 15 日后开始（现定 ${beijing(doc.opens_at)}）。`),
    action('发布会议通知', out, async () => {
      const done = await confirmStep('发布会议通知', `确认发布“${doc.title}”的会议通知？发布后不能再修改议题和规则。`, {
        ok: '确认发布', run: () => post(`${meetingPath(ctx.cid, ctx.mid)}/notice`) });
      if (done) { setFlash('会议通知已发布。下一步：发放选票二维码。'); reload(); }
    }, { class: 'danger', 'data-testid': 'publish-notice' }), out);
}

export function printLinks(ctx, kinds) {
  const out = msg('print-msg');
  const names = { notice: '会议通知', extension: '延期公告', sheets: '选票码单', results: '表决结果公告', committee: '业委会组成公告', filing: '备案材料' };
  return h('div', {}, kinds.map((k) => action(`打印${names[k]}（PDF）`, out, async () => {
    await download('GET', `${meetingPath(ctx.cid, ctx.mid)}/print/${k}.pdf`, `${ctx.mid}-${k}.pdf`);
  }, { class: 'secondary', 'data-print': k })), out);
}

export async function prepareStep(ctx, doc, reload) {
  const box = h('div', {});
  box.appendChild(mattersCard(ctx, doc, reload));
  if (doc.state === 'draft') {
    box.appendChild(await addMatterCard(ctx, reload));
    const nom = await nominationsCard(ctx, doc, reload);
    if (nom) box.appendChild(nom);
  }
  box.appendChild(await attachmentsCard(ctx, doc, reload));
  if (doc.state === 'draft') {
    box.appendChild(settingsCard(ctx, doc, reload));
    box.appendChild(noticeCard(ctx, doc, reload));
  } else {
    box.appendChild(h('section', { class: 'card' }, h('h2', {}, '会议通知'),
      h('p', {}, `通知已于 ${beijing(doc.noticed_at)} 发布。`), printLinks(ctx, ['notice'])));
  }
  return box;
}

