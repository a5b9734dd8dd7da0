// 筹备: before the first meeting — the preparatory group (list, posting, objections), the register's
// public posting (corrections), and the temporary management committee.  The rules are the server's:
// a refusal shows its Chinese message as it came.
import { get, post, admin, session, download } from './api.js';
import { h, msg, showError, showOk, action, field, input, select, table, beijing, confirmStep } from './ui.js';

const SIDES = [['owner', '业主代表'], ['street', '街道办事处'], ['residents_committee', '居委会'], ['developer', '建设单位'], ['other', '其他']];
const EMPLOYMENT = [['other', '其他'], ['civil_servant', '公务员'], ['public_institution', '事业单位工作人员']];
const GROUP_STATES = { draft: '草稿（未公示）', posted: '公示中', formed: '已成立', rejected: '异议成立，需重新组建' };
const TEMP_SIDES = [['street', '街道办事处'], ['residents_committee', '社区居委会'], ['owner', '业主代表']];
const resolver = () => ['district_admin', 'street_admin'].includes((session() || {}).role);

function memberRow(m = {}) {
  const row = h('div', { class: 'member-row', 'data-member-row': '' },
    input({ name: 'm-name', placeholder: '姓名', value: m.name || '' }),
    select('m-side', SIDES, m.side || 'owner'),
    input({ name: 'm-unit', placeholder: '房号（业主代表）', value: m.unit_label || '' }),
    h('label', { class: 'inline' }, h('input', { type: 'checkbox', name: 'm-party', checked: !!m.party_member }), '党员'),
    h('label', { class: 'inline' }, h('input', { type: 'radio', name: 'm-leader', checked: !!m.leader }), '组长'),
    h('label', { class: 'inline' }, '单位性质 ', select('m-employment', EMPLOYMENT, m.employment || 'other')));
  row.appendChild(h('button', { type: 'button', class: 'small secondary', onclick: () => row.remove() }, '删除'));
  return row;
}

function readMembers(list) {
  return [...list.querySelectorAll('[data-member-row]')].map((r) => ({
    name: r.querySelector('[name=m-name]').value.trim(), side: r.querySelector('[name=m-side]').value,
    unit_label: r.querySelector('[name=m-unit]').value.trim(), party_member: r.querySelector('[name=m-party]').checked,
    leader: r.querySelector('[name=m-leader]').checked, employment: r.querySelector('[name=m-employment]').value,
  })).filter((m) => m.name);
}

async function groupCard(ctx) {
  const out = msg('prep-group-msg');
  const card = h('section', { class: 'card', 'data-testid': 'prep-group' }, h('h2', {}, '筹备组'));
  let group = null;
  try { group = await get(`${admin(ctx.cid)}/prep-group`); } catch (e) { if (e.status !== 404) showError(out, e); }
  if (group) {
    card.appendChild(h('p', {}, '状态：', h('strong', { 'data-group-state': group.state }, GROUP_STATES[group.state] || group.state),
      group.posted_from ? `；公示期 ${beijing(group.posted_from)} 至 ${beijing(group.posted_until)}` : '',
      group.formed_on ? `；成立日期 ${group.formed_on}（60 日内召开首次业主大会）` : ''));
    card.appendChild(table(['序号', '姓名', '身份', '房号', '党员', '职务'], group.members.map((m) => [m.member_no, m.name, m.side_name,
      m.unit_label, m.party_member ? '是' : '', m.leader ? '组长' : '成员']), { 'data-testid': 'group-members' }));
    if (group.state !== 'draft') {
      card.appendChild(action('下载公示名单（PDF）', out, () => download('GET', `${admin(ctx.cid)}/prep-group.pdf`, '筹备组名单公示.pdf'), { class: 'secondary' }));
    }
    if (group.objections.length) {
      card.appendChild(h('h3', {}, '异议'));
      card.appendChild(table(['编号', '提出人', '内容', '处理'], group.objections.map((o) => [o.objection_no, o.filed_by, o.text,
        o.outcome ? `${o.outcome === 'upheld' ? '异议成立' : '异议不成立'}：${o.reason}`
          : (resolver() ? h('span', {},
            action('异议不成立', out, async () => {
              if (await confirmStep('处理异议', `第 ${o.objection_no} 条异议不成立？`, { input: '处理理由', ok: '确认',
                run: (reason) => post(`${admin(ctx.cid)}/prep-group/objections/${o.objection_no}/resolve`, { outcome: 'dismissed', reason }) })) ctx.refresh();
            }, { class: 'small', 'data-dismiss': o.objection_no }),
            action('异议成立', out, async () => {
              if (await confirmStep('处理异议', `第 ${o.objection_no} 条异议成立？筹备组需重新组建。`, { input: '处理理由', ok: '确认',
                run: (reason) => post(`${admin(ctx.cid)}/prep-group/objections/${o.objection_no}/resolve`, { outcome: 'upheld', reason }) })) ctx.refresh();
            }, { class: 'small secondary', 'data-uphold': o.objection_no })) : '待街道处理')]), { 'data-testid': 'objections' }));
    }
  }
  if (!group || group.state === 'draft' || group.state === 'rejected') {
    const list = h('div', { class: 'member-list', 'data-testid': 'member-list' });
    const start = group && group.state === 'draft' ? group.members : [{ side: 'street', leader: true }, {}, {}, {}, { side: 'residents_committee' }];
    start.forEach((m) => list.appendChild(memberRow(m)));
    const days = input({ type: 'number', name: 'posting-days', value: '7', min: '7', max: '60' });
    card.append(h('p', { class: 'hint' }, '成员应为 5 人以上的单数，业主代表不少于一半，组长由街道挂钩社区的党政领导担任。'), list,
      h('button', { type: 'button', class: 'secondary small', onclick: () => list.appendChild(memberRow()) }, '添加成员'),
      action('保存名单', out, async () => {
        await post(`${admin(ctx.cid)}/prep-group`, { members: readMembers(list) });
        ctx.refresh();
      }, { 'data-testid': 'group-save' }));
    if (group && group.state === 'draft') {
      card.append(field('公示天数（不少于 7 日）', days), action('公示名单', out, async () => {
        if (await confirmStep('公示筹备组名单', '公示后名单不能修改；公示期满无异议（或异议已处理）即成立。', { ok: '公示',
          run: () => post(`${admin(ctx.cid)}/prep-group/post`, { days: Number(days.value) }) })) ctx.refresh();
      }, { 'data-testid': 'group-post' }));
    }
  }
  card.appendChild(out);
  return card;
}

async function postingCard(ctx) {
  const out = msg('posting-msg');
  const card = h('section', { class: 'card', 'data-testid': 'register-posting' }, h('h2', {}, '业主名册公示'));
  const doc = await get(`${admin(ctx.cid)}/register-posting/corrections`);
  const p = doc.posting;
  card.appendChild(h('p', {}, p ? `第 ${p.posting_no} 次公示（名册第 ${p.version} 版）：${beijing(p.starts_at)} 至 ${beijing(p.ends_at)}${p.running ? '，公示中' : '，已结束'}` : '尚未公示业主名册。',
    doc.posting_required ? '' : '（本小区已关闭“公示期间不得发布会议公告”的规则）'));
  if (doc.corrections.length) {
    card.appendChild(table(['编号', '房号', '更正内容', '处理'], doc.corrections.map((c) => [c.correction_no, c.unit_id, c.text,
      c.status !== 'open' ? `${c.status === 'accepted' ? `已更正（第 ${c.new_version} 版）` : `不予更正：${c.reason}`}`
        : h('span', {}, action('已更正', out, async () => {
          if (await confirmStep('更正业主名册', '请先在“业主名册”页导入更正后的名册，再填写其版本号。', { input: '更正后的名册版本号', ok: '确认',
            run: (v) => post(`${admin(ctx.cid)}/register-posting/${c.posting_no}/corrections/${c.correction_no}/resolve`, { decision: 'accept', version: Number(v) }) })) ctx.refresh();
        }, { class: 'small', 'data-accept': c.correction_no }),
        action('不予更正', out, async () => {
          if (await confirmStep('不予更正', '请说明理由（将告知业主）。', { input: '理由', ok: '确认',
            run: (reason) => post(`${admin(ctx.cid)}/register-posting/${c.posting_no}/corrections/${c.correction_no}/resolve`, { decision: 'refuse', reason }) })) ctx.refresh();
        }, { class: 'small secondary', 'data-refuse': c.correction_no }))]), { 'data-testid': 'corrections' }));
  }
  if (!p || !p.running) {
    const days = input({ type: 'number', name: 'register-posting-days', value: '7', min: '7', max: '60' });
    card.append(field('公示天数（不少于 7 日）', days), action('公示最新版业主名册', out, async () => {
      await post(`${admin(ctx.cid)}/register-posting`, { days: Number(days.value) });
      ctx.refresh();
    }, { 'data-testid': 'posting-start' }));
  }
  card.appendChild(out);
  return card;
}

async function temporaryCard(ctx) {
  const out = msg('temporary-msg');
  const card = h('section', { class: 'card', 'data-testid': 'temporary-committee' }, h('h2', {}, '临时物业管理委员会'));
  const doc = await get(`${admin(ctx.cid)}/temporary-committee`);
  for (const t of doc.temporary_committees) {
    card.appendChild(h('p', {}, `第 ${t.tc_no} 届（${t.reason_name}）：${t.created_on} 成立`, t.ended_on ? `，${t.ended_on} 结束（${t.end_reason}）` : '，在任'));
    card.appendChild(table(['姓名', '身份', '房号'], t.members.map((m) => [m.name, m.side_name, m.unit_label])));
    if (t.meetings.length) card.appendChild(h('p', { class: 'hint' }, `以其名义召集的会议：${t.meetings.map((m) => m.title).join('、')}`));
  }
  if (doc.active) {
    const meetings = (await get(`${admin(ctx.cid)}/meetings`)).meetings.filter((m) => m.state === 'draft');
    if (meetings.length) {
      const which = select('convene-meeting', meetings.map((m) => [m.meeting_id, m.title]), meetings[0].meeting_id);
      card.append(field('以临时物业管理委员会名义召集', which), action('召集', out, async () => {
        await post(`${admin(ctx.cid)}/temporary-committee/convene`, { meeting_id: which.value });
        showOk(out, '已登记为召集人');
      }, { class: 'secondary' }));
    }
  } else if (resolver()) {
    const list = h('div', { class: 'member-list' });
    [['street'], ['residents_committee'], ['owner']].forEach(([side]) => list.appendChild(tempRow(side)));
    card.append(h('p', { class: 'hint' }, '小区未选举业委会或业委会任期届满未换届的，由街道、社区及业主代表组成。'), list,
      h('button', { type: 'button', class: 'secondary small', onclick: () => list.appendChild(tempRow('owner')) }, '添加成员'),
      action('成立临时物业管理委员会', out, async () => {
        const members = [...list.children].map((r) => ({ name: r.querySelector('input').value.trim(), side: r.querySelector('select').value,
          unit_label: r.querySelectorAll('input')[1].value.trim() })).filter((m) => m.name);
        await post(`${admin(ctx.cid)}/temporary-committee`, { members });
        ctx.refresh();
      }, { 'data-testid': 'temporary-create' }));
  }
  card.appendChild(out);
  return card;
}

function tempRow(side) {
  return h('div', { class: 'member-row' }, input({ name: 't-name', placeholder: '姓名' }), select('t-side', TEMP_SIDES, side),
    input({ name: 't-unit', placeholder: '房号（业主代表）' }));
}

export async function prepScreen(ctx) {
  const box = h('div', { 'data-screen': 'prep' });
  for (const make of [groupCard, postingCard, temporaryCard]) {
    try { box.appendChild(await make(ctx)); } catch (e) {
      const out = msg('prep-error');
      showError(out, e);
      box.appendChild(h('section', { class: 'card' }, out));
    }
  }
  return box;
}
