// Every call of the console goes through here: the staff token, the JSON envelope, downloads.
const KEY = 'evote.staff';

export class ApiError extends Error {
  constructor(status, code, message, fields) {
    super(message);
    this.status = status;
    this.code = code;
    this.fields = fields || {};
  }
}

export function session() {
  try { return JSON.parse(sessionStorage.getItem(KEY) || 'null'); } catch (e) { return null; }
}

export function saveSession(doc) { sessionStorage.setItem(KEY, JSON.stringify(doc)); }
export function clearSession() { sessionStorage.removeItem(KEY); }
export function token() { const s = session(); return s ? s.token : ''; }

let onSignedOut = () => {};
export function whenSignedOut(fn) { onSignedOut = fn; }

async function errorOf(resp) {
  let doc = null;
  try { doc = await resp.json(); } catch (e) { doc = null; }
  const err = doc && doc.error;
  if (err && err.message) return new ApiError(resp.status, err.code || '', err.message, err.fields);
  if (resp.status === 404) return new ApiError(404, 'not_found', '服务器暂不提供这项功能（404）', {});
  return new ApiError(resp.status, 'http_' + resp.status, `服务器未能完成请求（HTTP ${resp.status}）`, {});
}

// method, path; opts: json (object body), form (FormData), query (object), raw (return the Response)
export async function call(method, path, opts = {}) {
  const headers = {};
  const t = token();
  if (t) headers.Authorization = 'Bearer ' + t;
  let body;
  if (opts.json !== undefined) { headers['Content-Type'] = 'application/json'; body = JSON.stringify(opts.json); }
  if (opts.form !== undefined) body = opts.form;
  let url = path;
  if (opts.query) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(opts.query)) if (v !== undefined && v !== null && v !== '') q.set(k, v);
    if ([...q].length) url += '?' + q.toString();
  }
  let resp;
  try {
    resp = await fetch(url, { method, headers, body });
  } catch (e) {
    throw new ApiError(0, 'network', '无法连接服务器，请检查网络后重试', {});
  }
  if (!resp.ok) {
    const err = await errorOf(resp);
    if (resp.status === 401 && t) { clearSession(); onSignedOut(err); }
    throw err;
  }
  if (opts.raw) return resp;
  if (resp.status === 204) return null;
  const type = resp.headers.get('Content-Type') || '';
  return type.includes('json') ? resp.json() : resp.text();
}

export const get = (path, query) => call('GET', path, { query });
export const post = (path, json) => call('POST', path, json === undefined ? {} : { json });

function filenameOf(resp, fallback) {
  const cd = resp.headers.get('Content-Disposition') || '';
  const star = /filename\*=UTF-8''([^;]+)/i.exec(cd);
  if (star) return decodeURIComponent(star[1]);
  const plain = /filename="([^"]+)"/i.exec(cd);
  return plain ? plain[1] : fallback;
}

// Save a response as a file (the browser's download): returns the file name.
export async function saveResponse(resp, fallback) {
  const blob = await resp.blob();
  const name = filenameOf(resp, fallback);
  saveBlob(blob, name);
  return name;
}

export function saveBlob(blob, name) {
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
}

export async function download(method, path, fallback, json) {
  const resp = await call(method, path, { raw: true, json });
  return saveResponse(resp, fallback);
}

export const admin = (cid) => `/api/admin/communities/${encodeURIComponent(cid)}`;
export const meetingPath = (cid, mid) => `${admin(cid)}/meetings/${encodeURIComponent(mid)}`;
