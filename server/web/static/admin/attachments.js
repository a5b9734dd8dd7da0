// 附件: the drafts owners vote on (PDF or text), stored and hashed into the notice and the record.
import { call, get, meetingPath, download } from './api.js';
import { h, msg, showError, action, field, input, confirmStep, table } from './ui.js';

function size(n) { return n >= 1048576 ? `${(n / 1048576).toFixed(1)} MB` : `${Math.max(1, Math.round(n / 1024))} KB`; }

export async function attachmentsCard(ctx, doc, reload) {
  const draft = doc.state === 'draft';
  const base = `${meetingPath(ctx.cid, ctx.mid)}/attachments`;
  const out = msg('attachments-msg');
  const card = h('section', { class: 'card', 'data-testid': 'attachments' }, h('h2', {}, '附件（表决的文件草案）'),
    h('p', { class: 'hint' }, '例如管理规约草案、维修方案。PDF 或纯文本，每个不超过 10 MB。业主在选票页可以阅读；每个文件的指纹（SHA-256）写入会议通知和表决记录。通知发布后不能再增删。'));
  let list = [];
  try { list = (await get(base)).attachments; } catch (e) { showError(out, e); }
  if (list.length) {
    card.appendChild(table(['标题', '文件', '大小', '指纹（SHA-256 前 16 位）', '操作'], list.map((a) => [a.title, a.filename, size(a.size), (a.sha256 || '').slice(0, 16),
      h('span', {},
        action('下载', out, async () => { await download('GET', `${base}/${a.attachment_id}`, a.filename); }, { class: 'small secondary' }),
        draft ? action('删除', out, async () => {
          const ok = await confirmStep('删除附件', `删除附件“${a.title}”？`, { ok: '删除', run: () => call('DELETE', `${base}/${a.attachment_id}`) });
          if (ok !== null) reload();
        }, { class: 'small secondary' }) : null)]), { 'data-testid': 'attachment-list' }));
  } else card.appendChild(h('p', { class: 'hint' }, '没有附件。'));
  if (draft) {
    const file = h('input', { type: 'file', name: 'attachment-file', accept: '.pdf,.txt,application/pdf,text/plain' });
    const title = input({ name: 'attachment-title', maxlength: 200, placeholder: '可不填，默认用文件名' });
    card.appendChild(h('div', {}, field('选择文件', file), field('附件标题', title),
      action('上传附件', out, async () => {
        if (!file.files[0]) throw new Error('请先选择文件（PDF 或 .txt）');
        const form = new FormData();
        if (title.value.trim()) form.append('title', title.value.trim());
        form.append('file', file.files[0], file.files[0].name);
        await call('POST', base, { form });
        reload();
      }, { 'data-testid': 'upload-attachment' })));
  }
  card.appendChild(out);
  return card;
}
