// ② 选票二维码: issue every owner's code (A4 sheets per building), reissue a lost one, unlock a
// locked-out owner, and download the printable sheets.
import { call, get, post, meetingPath, saveResponse } from './api.js';
import { h, msg, showError, showOk, showWarn, action, field, input, confirmStep, table, beijing, clear, setFlash } from './ui.js';
import { printLinks } from './draft.js';

async function issue(ctx, out, body) {
  const resp = await call('POST', `${meetingPath(ctx.cid, ctx.mid)}/codes`, { json: body, raw: true });
  const name = await saveResponse(resp, `${ctx.mid}-codes.${body.format || 'zip'}`);
  setFlash(`已发放并下载：${name}。这是选票码明文的唯一一份，请妥善保管、按楼栋打印分发；不要外传。`);
}

function issueCard(ctx, doc, status, reload) {
  const out = msg('codes-msg');
  const format = h('select', { name: 'codes-format' }, h('option', { value: 'zip' }, '压缩包（每栋一个 PDF，另附 codes.csv）'),
    h('option', { value: 'pdf' }, '一个 PDF（全部楼栋）'));
  const card = h('section', { class: 'card', 'data-testid': 'codes-issue' }, h('h2', {}, '发放选票二维码'),
    h('p', { class: 'hint' }, '每户一张二维码选票码单，按楼栋排好，可直接打印（A4）。业主扫码后输入手机号后四位即可投票。'));
  if (doc.state === 'draft') {
    card.appendChild(h('p', { class: 'msg warn' }, '请先发布会议通知，才能发放选票码。'));
    return card;
  }
  card.appendChild(h('p', { 'data-testid': 'codes-status' }, `共 ${status.voters} 户，已发放 ${status.issued} 户，已扫码登录 ${status.redeemed} 户，被锁定 ${status.locked} 户。`));
  const run = async (extra) => {
    try {
      await issue(ctx, out, { format: format.value, ...extra });
      reload();
    } catch (err) {
      if (err.code === 'public_url_not_usable' && !extra.test) {
        showError(out, err);
        const ok = await confirmStep('这是测试吗？', `${err.message}\n\n如果只是测试或演练（码单不会真正发给业主），可以继续发放。`, { ok: '这是测试，继续发放' });
        if (ok) await run({ ...extra, test: true });
        return;
      }
      if (err.code === 'codes_already_issued' && !extra.replace_existing) {
        showWarn(out, `${err.message}`);
        return;
      }
      throw err;
    }
  };
  card.appendChild(field('下载格式', format));
  card.appendChild(action(status.issued ? '为未发放的业主发放' : '发放全部选票码', out, () => run({}), { 'data-testid': 'issue-codes' }));
  if (status.issued) {
    card.appendChild(action('全部重新发放（旧码全部作废）', out, async () => {
      const ok = await confirmStep('全部重新发放', '所有已发出的二维码将立即失效，必须把新码单重新送到每一户。确定吗？', { ok: '全部作废并重新发放' });
      if (ok) await run({ replace_existing: true });
    }, { class: 'danger', 'data-testid': 'reissue-all' }));
  }
  card.appendChild(out);
  card.appendChild(printLinks(ctx, ['sheets']));
  return card;
}

function reissueResult(doc) {
  return h('div', { class: 'card', 'data-testid': 'reissued' }, h('h3', {}, `${doc.building} 栋 ${doc.units.join('、')} 的新选票码`),
    h('div', { class: 'qr' }, h('img', { alt: '二维码', src: `data:image/png;base64,${doc.qr_png_base64}` })),
    h('p', {}, '选票码：', h('strong', { 'data-testid': 'new-code' }, doc.code)), h('p', { class: 'hint' }, doc.url),
    h('p', { class: 'hint' }, '旧码已失效。此码只显示这一次，请现在打印或交给业主本人。'));
}

function votersCard(ctx, doc, status, reload) {
  const out = msg('voters-msg');
  const shown = h('div', {});
  const result = h('div', {});
  const search = input({ name: 'voter-search', placeholder: '输入楼栋或业主编号查找' });
  const card = h('section', { class: 'card', 'data-testid': 'codes-voters' }, h('h2', {}, '补发与解锁'),
    h('p', { class: 'hint' }, '业主丢了码单：补发（旧码立即失效）。业主多次输错被锁定：当面核实身份后解锁。两项操作都会记入审计日志。'),
    field('查找', search), out, result, shown);
  const render = () => {
    const q = search.value.trim();
    const rows = status.codes.filter((v) => !q || v.building === q || v.voter_id.includes(q));
    rows.sort((a, b) => Number(b.locked) - Number(a.locked));
    clear(shown).appendChild(table(['业主编号', '楼栋', '序号', '发放', '登录', '状态', '操作'], rows.slice(0, 100).map((v) => [v.voter_id, v.building, v.serial ?? '',
      v.issued_at ? beijing(v.issued_at) : '未发放', v.redeemed_at ? '已登录' : '', v.locked ? '已锁定' : '',
      h('span', {},
        action('补发', out, async () => {
          let answer = null;
          await confirmStep('补发选票码', `为 ${v.voter_id}（${v.building} 栋）补发新码？旧码将立即失效。`, { input: '补发原因', value: '业主遗失码单',
            ok: '补发', run: async (reason) => { answer = await post(`${meetingPath(ctx.cid, ctx.mid)}/codes/${encodeURIComponent(v.voter_id)}/reissue`, { reason }); return true; } });
          if (answer) { clear(result).appendChild(reissueResult(answer)); showOk(out, '已补发。'); }
        }, { class: 'small secondary', 'data-reissue': v.voter_id }),
        v.locked ? action('解锁', out, async () => {
          const done = await confirmStep('解锁', `解锁 ${v.voter_id}（${v.building} 栋）？请先当面核实业主身份。`, { input: '解锁原因', value: '已当面核实业主身份',
            ok: '解锁', run: (reason) => post(`${meetingPath(ctx.cid, ctx.mid)}/codes/${encodeURIComponent(v.voter_id)}/unlock`, { reason }) });
          if (done) { setFlash(`已解锁 ${v.voter_id}。`); reload(); }
        }, { class: 'small', 'data-unlock': v.voter_id }) : null)]), { 'data-testid': 'voter-codes' }));
    if (rows.length > 100) shown.appendChild(h('p', { class: 'hint' }, `只显示前 100 户，共 ${rows.length} 户；请输入楼栋或编号查找。`));
  };
  search.addEventListener('input', render);
  render();
  return card;
}

export async function codesStep(ctx, doc, reload) {
  const box = h('div', {});
  let status = { voters: 0, issued: 0, redeemed: 0, locked: 0, codes: [] };
  if (doc.state !== 'draft') {
    try { status = await get(`${meetingPath(ctx.cid, ctx.mid)}/codes`); } catch (e) {
      const out = msg('codes-status-error'); showError(out, e); box.appendChild(out);
    }
  }
  box.appendChild(issueCard(ctx, doc, status, reload));
  if (status.codes.length) box.appendChild(votersCard(ctx, doc, status, reload));
  if (doc.state === 'noticed') box.appendChild(openCard(ctx, doc, reload));
  return box;
}

export function openCard(ctx, doc, reload) {
  const out = msg('open-msg');
  return h('section', { class: 'card', 'data-testid': 'open' }, h('h2', {}, '开始投票'),
    h('p', { class: 'hint' }, `到了投票开始时间（${beijing(doc.opens_at)}），系统会自动开始投票；也可以在时间到后手动开始。`),
    action('开始投票', out, async () => {
      const done = await confirmStep('开始投票', '现在开始投票？', { ok: '开始投票', run: () => post(`${meetingPath(ctx.cid, ctx.mid)}/open`) });
      if (done) reload();
    }, { 'data-testid': 'open-meeting' }), out);
}
