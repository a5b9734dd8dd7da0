// 业主名册: upload CSV or xlsx, check it (every problem by line), fix and upload again, import.
import { call, get, admin, download } from './api.js';
import { h, msg, showError, showOk, hideMsg, action, table, beijing, clear } from './ui.js';

function problemsTable(problems) {
  return table(['行', '列', '问题'], problems.map((p) => [p.line ? `第 ${p.line} 行` : '整个文件', p.column_label || p.column || '', p.message]),
    { class: 'problems', 'data-testid': 'problems' });
}

function warningsList(warnings, count) {
  const total = count || warnings.length;
  return h('div', { 'data-testid': 'warnings' }, h('h3', {}, `提醒（不影响导入，请核对）：${total} 条${total > warnings.length ? `，下面列出前 ${warnings.length} 条` : ''}`),
    table(['行', '提醒'], warnings.map((w) => [w.line ? `第 ${w.line} 行` : '', w.message])));
}

function problemsOf(err) {
  const rows = err && err.fields && err.fields.rows;
  return Array.isArray(rows) ? rows : null;
}

function fileForm(file) {
  const form = new FormData();
  form.append('file', file, file.name);
  return form;
}

async function versionsCard(ctx) {
  const card = h('section', { class: 'card', 'data-testid': 'register-versions' }, h('h2', {}, '已导入的版本与合计'));
  let versions = [];
  try { versions = (await get(`${admin(ctx.cid)}/register/versions`)).versions; } catch (e) {
    const out = msg('versions-error'); showError(out, e); card.appendChild(out); return card;
  }
  if (!versions.length) {
    card.appendChild(h('p', { class: 'hint' }, '还没有导入过业主名册。'));
    return card;
  }
  card.appendChild(table(['版本', '文件', '房屋', '业主', '导入人', '导入时间'],
    versions.slice().reverse().map((v) => [`第 ${v.version} 版`, v.source_name, v.unit_count, v.owner_count, v.created_by, beijing(v.created_at)])));
  try {
    const t = await get(`${admin(ctx.cid)}/register/totals`);
    card.appendChild(h('h3', {}, `第 ${t.register_version} 版合计`));
    card.appendChild(h('p', { 'data-testid': 'register-totals' },
      h('span', { class: 'big' }, t.totals.area), ' 平方米（专有部分面积） · ',
      h('span', { class: 'big' }, t.totals.persons), ' 人（表决主体）'));
    card.appendChild(table(['楼栋', '面积（m²）', '人数', '房屋'], t.buildings.map((b) => [b.building, b.area, b.persons, b.units])));
  } catch (e) { const out = msg('totals-error'); showError(out, e); card.appendChild(out); }
  return card;
}

export async function registerScreen(ctx) {
  const box = h('div', { 'data-screen': 'register' });
  const out = msg('register-msg');
  const result = h('div', { 'data-testid': 'preview' });
  const fileInput = h('input', { type: 'file', name: 'register-file', accept: '.csv,.xlsx,text/csv,application/vnd.openxmlformats-officedocument.spreadsheetml.sheet' });
  let checkedFile = null;
  const importButton = action('确认导入', out, async () => {
    const file = checkedFile;
    const doc = await call('POST', `${admin(ctx.cid)}/register`, { form: fileForm(file) });
    showDone(doc);
  }, { class: 'danger', 'data-testid': 'import', hidden: true });

  function showDone(doc) {
    checkedFile = null;
    importButton.hidden = true;
    clear(result);
    showOk(out, `已导入第 ${doc.version} 版业主名册：${doc.units} 套房屋，${doc.owners} 位业主，总面积 ${doc.total_area} 平方米，${doc.total_persons} 个表决主体。`);
    if (doc.warnings && doc.warnings.length) result.appendChild(warningsList(doc.warnings, doc.warning_count));
    versionsCard(ctx).then((card) => { const old = box.querySelector('[data-testid=register-versions]'); if (old) old.replaceWith(card); });
  }

  const checkButton = action('检查文件', out, async () => {
    const file = fileInput.files[0];
    clear(result);
    importButton.hidden = true;
    if (!file) { showError(out, new Error('请先选择文件（CSV 或 Excel .xlsx）')); return; }
    let doc;
    let resp;
    try {
      resp = await call('POST', `${admin(ctx.cid)}/register`, { form: fileForm(file), query: { preview: 1 }, raw: true });
      doc = await resp.json();
    } catch (err) {
      const problems = problemsOf(err);
      if (!problems) throw err;
      showError(out, err);
      result.appendChild(problemsTable(problems));
      return;
    }
    if (resp.status === 201) { showDone(doc); return; }   // a server without a preview imports at once
    const problems = doc.problems || [];
    if (!doc.ok || problems.length) {
      const count = doc.problem_count || problems.length;
      showError(out, new Error(`文件中有 ${count} 处问题${count > problems.length ? `（下面列出前 ${problems.length} 处）` : ''}，请在表格中改正后重新选择文件检查。没有导入任何数据。`));
      result.appendChild(problemsTable(problems));
      if (doc.warnings && doc.warnings.length) result.appendChild(warningsList(doc.warnings, doc.warning_count));
      return;
    }
    checkedFile = file;
    const t = doc.totals || {};
    showOk(out, `检查通过：${t.units ?? ''} 套房屋，${t.owners ?? ''} 位业主，总面积 ${t.total_area ?? '—'} 平方米，${t.total_persons ?? '—'} 个表决主体。尚未导入：请核对后点“确认导入”。`);
    if (doc.warnings && doc.warnings.length) result.appendChild(warningsList(doc.warnings, doc.warning_count));
    importButton.hidden = false;
  }, { 'data-testid': 'check' });

  fileInput.addEventListener('change', () => { checkedFile = null; importButton.hidden = true; hideMsg(out); clear(result); });

  const tmplOut = msg('template-msg');
  box.appendChild(h('section', { class: 'card' },
    h('h2', {}, '导入业主名册'),
    h('p', { class: 'hint' }, '第一步：下载模板，按模板填写（每套房屋的每位业主一行，可填中文：住宅/商业/车位，不动产登记/实测/合同，业主/建设单位）。',
      '第二步：选择填好的文件，点“检查文件”。有问题的行会逐行列出，改好后重新选择文件再检查。第三步：检查通过后点“确认导入”。导入是全部或全不：有任何一行有误，都不会导入。'),
    action('下载名册模板（Excel）', tmplOut, async () => {
      await download('GET', '/api/admin/register-template.xlsx', '业主名册模板.xlsx');
    }, { class: 'secondary', 'data-testid': 'template' }), tmplOut,
    h('label', {}, h('span', { class: 'name' }, '名册文件（CSV 或 Excel .xlsx）'), fileInput),
    checkButton, importButton, out, result));
  box.appendChild(await versionsCard(ctx));
  return box;
}

