// 工作进度: the district's campaigns and their boards (district, street and 社区 admins).  Every figure
// comes from GET /api/admin/campaigns/{id}/board, which derives each community's stage from what was
// recorded; nothing here is typed by hand.
import { get, download } from './api.js';
import { h, msg, showError, action, field, input, select, table } from './ui.js';

const BATCH_STATES = { met: '已完成', missed: '未完成', on_track: '进度达标', behind: '进度落后' };
const BOARD_ROLES = ['district_admin', 'street_admin', 'shequ_admin'];

export const mayWatchBoards = (role) => BOARD_ROLES.includes(role);

export async function campaignsScreen() {
  const box = h('div', { 'data-screen': 'campaigns' }, h('h1', {}, '工作进度'));
  const list = (await get('/api/admin/campaigns')).campaigns;
  if (!list.length) {
    box.appendChild(h('p', { class: 'msg warn' }, '还没有工作计划。区级管理员导入计划和小区名单后，这里显示各批次的进度。'));
    return box;
  }
  box.appendChild(h('ul', { class: 'list', 'data-testid': 'campaigns' }, list.map((c) => h('li', {},
    h('a', { href: `#/d/${encodeURIComponent(c.campaign_id)}`, 'data-campaign': c.campaign_id },
      h('strong', {}, c.name), h('br'), h('span', { class: 'hint' }, `${c.communities} 个小区 · 自 ${c.starts_on} 起`))))));
  return box;
}

function batchTable(board) {
  return table(['批次', '完成期限', '累计目标', '期限内完成', '目前完成', '状态', '尚无完成小区的社区'], board.batches.map((b) => [
    b.name, b.due_on, `${b.cumulative_percent}%（${b.target} 个）`, b.done_by_due, b.done_now,
    h('span', { class: `badge ${b.state}`, 'data-batch-state': b.state }, BATCH_STATES[b.state] || b.state),
    b.shequ_without.map((s) => s.name).join('、')]), { 'data-testid': 'batches' });
}

function stageBars(board) {
  const most = Math.max(1, ...board.stages.map((s) => s.count));
  return h('div', { class: 'stages', 'data-testid': 'stages' }, board.stages.map((s) => h('div', { class: 'stage-row', 'data-stage': s.stage },
    h('span', { class: 'stage-name' }, s.name),
    h('span', { class: 'stage-bar' }, h('span', { style: `width:${Math.round((s.count / most) * 100)}%` })),
    h('strong', { class: 'stage-count' }, String(s.count)))));
}

export async function boardScreen(campaignId, query) {
  const out = msg('board-msg');
  const day = input({ type: 'date', name: 'board-day', value: query.today || '' });
  const board = await get(`/api/admin/campaigns/${encodeURIComponent(campaignId)}/board`,
    { today: query.today, street_id: query.street });
  const streets = board.streets.map((s) => [s.street_id, s.street_name]);
  const street = select('board-street', [['', '全部街道'], ...streets], query.street || '');
  const go = () => {
    const q = new URLSearchParams();
    if (day.value) q.set('today', day.value);
    if (street.value) q.set('street', street.value);
    location.hash = `#/d/${encodeURIComponent(campaignId)}${q.toString() ? '?' + q.toString() : ''}`;
  };
  const scoped = board.scope.street_id || (board.scope.shequ_ids ? `社区 ${board.scope.shequ_ids.join('、')}` : '');
  const box = h('div', { 'data-screen': 'board' },
    h('h1', {}, board.name),
    h('p', { class: 'hint' }, `截至 ${board.today}${scoped ? `，范围：${scoped}` : ''}：共 ${board.communities} 个小区，`,
      h('strong', { 'data-testid': 'done-count' }, `已完成组建 ${board.done} 个`), '（业委会已选举产生）。各小区的阶段由系统根据已登记的事实自动得出。'),
    h('section', { class: 'card' }, h('div', { class: 'row' }, field('查看日期', day), streets.length > 1 ? field('街道', street) : null),
      action('刷新', out, async () => go(), { class: 'secondary', 'data-testid': 'board-refresh' }),
      action('下载通报（Excel）', out, () => download('GET', `/api/admin/campaigns/${encodeURIComponent(campaignId)}/board.xlsx${day.value ? `?today=${day.value}` : ''}`, '通报.xlsx'),
        { class: 'secondary', 'data-testid': 'board-xlsx' }),
      action('下载补助测算（Excel）', out, () => download('GET', `/api/admin/campaigns/${encodeURIComponent(campaignId)}/subsidies.xlsx`, '补助.xlsx'),
        { class: 'secondary', 'data-testid': 'subsidy-xlsx' }), out),
    h('section', { class: 'card' }, h('h2', {}, '批次目标'), batchTable(board)),
    h('section', { class: 'card' }, h('h2', {}, '各阶段小区数'), stageBars(board)),
    h('section', { class: 'card' }, h('h2', {}, `逾期小区（${board.overdue.length}）`),
      board.overdue.length ? table(['小区', '街道', '当前阶段', '尚缺', '期限', '逾期天数'], board.overdue.map((o) => [
        o.name, o.street_id, o.stage_name, o.missing, o.due_on, o.days_late]), { 'data-testid': 'overdue' })
        : h('p', { class: 'hint' }, '没有逾期的小区。')),
    board.streets.length > 1 ? h('section', { class: 'card' }, h('h2', {}, '各街道'),
      table(['街道', '小区数', '已完成组建', '完成比例'], board.streets.map((s) => [s.street_name, s.communities, s.done,
        `${Math.round((s.done / Math.max(1, s.communities)) * 100)}%`]), { 'data-testid': 'streets' })) : null,
    h('section', { class: 'card' }, h('h2', {}, '全部小区'),
      table(['小区', '街道', '社区', '批次', '当前阶段', '下一步', '完成期限'], board.rows.map((r) => [
        h('a', { href: `#/c/${encodeURIComponent(r.community_id)}/prep`, 'data-row': r.community_id }, r.name),
        r.street_name, r.shequ_name || '', r.batch_no ? `第${r.batch_no}批` : (r.area_id || ''),
        h('span', { 'data-stage-of': r.community_id }, r.stage_name), r.missing, r.due_on || '']), { 'data-testid': 'rows' })));
  return box;
}
