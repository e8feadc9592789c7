// The videotask dashboard. Data comes from /api/* as the JSON of the gRPC
// messages (protobuf's JSON mapping, the names grpcurl shows). Caller text
// (stubs, prompts, labels, errors) reaches the page only through
// textContent, never as HTML. The bearer token, when the server asks for
// one, lives in this tab's sessionStorage and travels only in the
// Authorization header.

const TOKEN_KEY = 'videotask.token';
const STATES = ['QUEUED', 'SUBMITTING', 'RUNNING', 'DOWNLOADING', 'SUCCEEDED', 'FAILED',
  'CANCELLED'];
const TERMINAL = new Set(['SUCCEEDED', 'FAILED', 'CANCELLED']);
const PAGE_SIZE = 50;

const $ = (id) => document.getElementById(id);

function el(tag, text, className) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (className) e.className = className;
  return e;
}

class Unauthorized extends Error {}

class ApiError extends Error {
  constructor(status, body) {
    super(body && body.message ? `${body.code}: ${body.message}` : `HTTP ${status}`);
    this.status = status;
  }
}

function authHeaders() {
  const token = sessionStorage.getItem(TOKEN_KEY);
  return token ? { Authorization: `Bearer ${token}` } : {};
}

async function api(path, options = {}) {
  const headers = { ...authHeaders(), ...(options.headers || {}) };
  const init = { method: options.method || 'GET', headers, cache: 'no-store' };
  if (init.method !== 'GET') {
    headers['Content-Type'] = 'application/json';
    init.body = '{}';
  }
  const res = await fetch(path, init);
  if (res.status === 401) {
    await res.text().catch(() => '');  // read it out, so the request ends
    throw new Unauthorized();
  }
  let body = null;
  try { body = await res.json(); } catch (e) { body = null; }
  if (!res.ok) throw new ApiError(res.status, body);
  return body;
}

// Reads a Server-Sent Events stream with fetch (EventSource cannot send an
// Authorization header). Calls onEvent(name, data) per event; resolves when
// the stream ends.
async function readEvents(path, onEvent, signal) {
  const res = await fetch(path, { headers: authHeaders(), cache: 'no-store', signal });
  if (res.status === 401 || !res.ok || !res.body) {
    await res.text().catch(() => '');
    if (res.status === 401) throw new Unauthorized();
    throw new ApiError(res.status, null);
  }
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let name = 'message';
      const data = [];
      for (const line of block.split('\n')) {
        if (line.startsWith('event:')) name = line.slice(6).trim();
        else if (line.startsWith('data:')) data.push(line.slice(5).trimStart());
      }
      if (data.length) onEvent(name, JSON.parse(data.join('\n')));
    }
  }
}

function age(iso) {
  if (!iso) return '';
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  return seconds(s);
}

function seconds(s) {
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
}

// ---- views ----

const view = {
  abort: null,  // AbortController of the current page's streams
  capabilities: { retry: false },
  pageTokens: [''],  // keyset tokens of the pages seen, newest first
  page: 0,
};

function show(section) {
  for (const id of ['login', 'home', 'task']) $(id).hidden = id !== section;
}

// Ages tick on the page; the server only sends when the queue changes.
setInterval(() => {
  for (const td of document.querySelectorAll('td[data-since]')) {
    td.textContent = age(td.dataset.since);
  }
}, 1000);

function setLive(text) { $('live').textContent = text; }

function needLogin(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  if (view.abort) view.abort.abort();
  show('login');
  $('logout').hidden = true;
  $('login-error').textContent = message || '';
  setLive('signed out');
}

async function guarded(fn) {
  try {
    await fn();
  } catch (e) {
    if (e instanceof Unauthorized) needLogin('');
    else throw e;
  }
}

// Keeps a stream open, reconnecting after it ends, until `signal` aborts.
async function keepStreaming(path, onEvent, signal) {
  while (!signal.aborted) {
    try {
      setLive('live');
      await readEvents(path, onEvent, signal);
    } catch (e) {
      if (e instanceof Unauthorized) { needLogin(''); return; }
      if (signal.aborted) return;
      setLive('reconnecting');
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}

function renderOverview(data) {
  const body = $('overview').querySelector('tbody');
  body.replaceChildren();
  const backendSelect = $('f-backend');
  const known = new Set([...backendSelect.options].map((o) => o.value));
  for (const b of data.backends || []) {
    const tr = el('tr');
    tr.dataset.backend = b.name;
    tr.append(el('td', b.name));
    for (const s of STATES) {
      const td = el('td', (b.counts && b.counts[s]) || 0, 'num');
      td.dataset.state = s;
      tr.append(td);
    }
    tr.append(el('td', `${b.active || 0} / ${b.maxConcurrency || 0}`, 'num'));
    const oldest = el('td', age(b.oldestQueuedTime), 'num');
    oldest.dataset.since = b.oldestQueuedTime || '';
    tr.append(oldest);
    body.append(tr);
    if (!known.has(b.name)) backendSelect.append(new Option(b.name, b.name));
  }
}

function listQuery() {
  const q = new URLSearchParams();
  q.set('page_size', String(PAGE_SIZE));
  if ($('f-state').value) q.append('state', $('f-state').value);
  if ($('f-backend').value) q.set('backend', $('f-backend').value);
  const label = $('f-label').value.trim();
  if (label) q.append('label', label);
  const text = $('f-text').value.trim();
  if (text) q.set('q', text);
  const token = view.pageTokens[view.page];
  if (token) q.set('page_token', token);
  return q;
}

function taskRow(t) {
  const tr = el('tr');
  tr.dataset.id = t.id;
  tr.dataset.state = t.state;
  const idCell = el('td', null, 'mono');
  const link = el('a', t.id);
  link.href = `#/task/${encodeURIComponent(t.id)}`;
  idCell.append(link);
  tr.append(idCell);
  tr.append(el('td', t.targetFilenameStub || ''));
  const stateCell = el('td', null, 'state');
  stateCell.append(el('span', t.state, `badge s-${t.state}`));
  const bar = el('progress');
  bar.max = 1;
  bar.value = t.state === 'SUCCEEDED' ? 1 : (t.progress || 0);
  stateCell.append(bar);
  tr.append(stateCell);
  const spec = t.spec || {};
  tr.append(el('td', `${spec.backend || ''} / ${spec.model || ''}`));
  tr.append(el('td', age(t.createTime), 'num'));
  tr.append(el('td', t.error ? t.error.code : '', 'error-code'));
  return tr;
}

async function loadList() {
  $('list-error').textContent = '';
  try {
    const data = await api(`/api/tasks?${listQuery()}`);
    const body = $('tasks').querySelector('tbody');
    body.replaceChildren(...(data.tasks || []).map(taskRow));
    view.pageTokens[view.page + 1] = data.nextPageToken || '';
    $('next-page').disabled = !data.nextPageToken;
    $('first-page').disabled = view.page === 0;
  } catch (e) {
    if (e instanceof Unauthorized) throw e;
    $('list-error').textContent = e.message;
  }
}

async function showHome() {
  show('home');
  const abort = new AbortController();
  view.abort = abort;
  await guarded(async () => {
    renderOverview(await api('/api/overview'));
    await loadList();
  });
  let pending = null;
  keepStreaming('/api/events', (name, data) => {
    if (name !== 'overview') return;
    renderOverview(data);
    // Something changed: refresh the page on screen (one page, never the whole list).
    if (!pending) {
      pending = setTimeout(() => { pending = null; guarded(loadList); }, 200);
    }
  }, abort.signal);
}

function field(dl, name, value) {
  if (value === undefined || value === null || value === '') return;
  dl.append(el('dt', name));
  const dd = el('dd', value);
  dd.dataset.field = name;
  dl.append(dd);
}

function renderTask(t) {
  $('t-id').textContent = t.id;
  const dl = $('t-fields');
  dl.replaceChildren();
  const spec = t.spec || {};
  field(dl, 'state', t.state);
  field(dl, 'progress', t.progress === undefined ? undefined : `${Math.round(t.progress * 100)}%`);
  field(dl, 'prompt', spec.promptText);
  field(dl, 'stub', t.targetFilenameStub);
  field(dl, 'backend / model', `${spec.backend || ''} / ${spec.model || ''}`);
  field(dl, 'provider task id', t.providerTaskId);
  field(dl, 'provider status', t.providerStatus);
  field(dl, 'attempts', t.attemptCount || 0);
  // Servers that keep each try's history list them (Task.attempts).
  (t.attempts || []).forEach((a, i) => {
    const parts = [a.state, a.providerTaskId, a.startTime && `from ${a.startTime}`,
      a.endTime && `to ${a.endTime}`, a.error && `${a.error.code}${a.error.providerCode
        ? ` (${a.error.providerCode})` : ''}: ${a.error.message || ''}`];
    field(dl, `try ${i + 1}`, parts.filter(Boolean).join(' · '));
  });
  if (t.error) {
    field(dl, 'error code', t.error.code);
    field(dl, 'provider code', t.error.providerCode);
    field(dl, 'error', t.error.message);
    field(dl, 'retryable', t.error.retryable ? 'yes' : 'no');
  }
  field(dl, 'created', t.createTime);
  field(dl, 'started', t.startTime);
  field(dl, 'updated', t.updateTime);
  field(dl, 'ended', t.endTime);
  field(dl, 'next attempt', t.nextAttemptTime);
  field(dl, 'output', t.outputPath);
  field(dl, 'output bytes', t.outputSizeBytes);
  field(dl, 'image sha256', t.imageSha256);
  field(dl, 'request id', t.requestId);
  $('t-spec').textContent = JSON.stringify(spec, null, 2);
  $('t-cancel').hidden = TERMINAL.has(t.state);
  $('t-retry').hidden = !view.capabilities.retry ||
    !(t.state === 'FAILED' || t.state === 'CANCELLED');
}

async function loadMedia(t) {
  const media = await api(`/api/tasks/${encodeURIComponent(t.id)}/media`, { method: 'POST' });
  const img = $('t-image');
  if (media.image && !img.getAttribute('src')) {
    img.src = media.image;
    img.hidden = false;
    $('t-image-caption').textContent = 'input image';
  } else if (!media.image && !img.getAttribute('src')) {
    $('t-image-caption').textContent = 'input image: not kept once the task succeeded';
  }
  const video = $('t-video');
  if (media.video && t.state === 'SUCCEEDED' && !video.getAttribute('src')) {
    video.src = media.video;
    video.hidden = false;
    const a = $('t-download');
    a.href = media.download;
    a.setAttribute('download', `${t.targetFilenameStub || t.id}.mp4`);
    a.hidden = false;
    $('t-novideo').hidden = true;
  }
}

function resetTaskView() {
  for (const id of ['t-image', 't-video']) {
    const e = $(id);
    e.removeAttribute('src');
    e.hidden = true;
  }
  $('t-download').hidden = true;
  $('t-novideo').hidden = false;
  $('t-action-result').textContent = '';
  $('task-error').textContent = '';
  $('t-fields').replaceChildren();
  $('t-spec').textContent = '';
  $('t-cancel').hidden = true;
  $('t-retry').hidden = true;
}

async function showTask(id) {
  show('task');
  resetTaskView();
  const abort = new AbortController();
  view.abort = abort;
  view.taskId = id;
  let last = null;
  const update = (t) => {
    if (view.taskId !== id) return;
    const needMedia = !last || (t.state === 'SUCCEEDED' && last.state !== 'SUCCEEDED');
    last = t;
    renderTask(t);
    if (TERMINAL.has(t.state)) abort.abort();  // nothing more will change
    if (needMedia) guarded(() => loadMedia(t)).catch((e) => {
      $('task-error').textContent = e.message;
    });
  };
  try {
    await guarded(async () => update(await api(`/api/tasks/${encodeURIComponent(id)}`)));
  } catch (e) {
    $('task-error').textContent = e.message;
    return;
  }
  if (last && TERMINAL.has(last.state)) return;
  keepStreaming(`/api/tasks/${encodeURIComponent(id)}/watch`, (name, data) => {
    if (name === 'task') update(data);
  }, abort.signal);
}

async function act(verb) {
  const id = view.taskId;
  $('t-action-result').textContent = '';
  try {
    await guarded(async () => {
      const t = await api(`/api/tasks/${encodeURIComponent(id)}/${verb}`, { method: 'POST' });
      // A retried task is followed live again; showing it resets the view,
      // so the result is written after that.
      if (verb === 'retry') await route();
      else renderTask(t);
      $('t-action-result').textContent = verb === 'cancel' ? 'Cancelled.' : 'Queued again.';
    });
  } catch (e) {
    $('t-action-result').textContent = e.message;
  }
}

async function route() {
  if (view.abort) view.abort.abort();
  view.abort = null;
  view.taskId = null;
  const m = location.hash.match(/^#\/task\/(.+)$/);
  try {
    view.capabilities = await api('/api/capabilities');
  } catch (e) {
    if (e instanceof Unauthorized) { needLogin(''); return; }
    setLive('offline');
    return;
  }
  $('logout').hidden = !sessionStorage.getItem(TOKEN_KEY);
  if (m) await showTask(decodeURIComponent(m[1]));
  else await showHome();
}

function init() {
  $('login-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const token = $('login-token').value.trim();
    $('login-token').value = '';
    sessionStorage.setItem(TOKEN_KEY, token);
    try {
      await api('/api/capabilities');
    } catch (e) {
      needLogin(e instanceof Unauthorized ? 'That token was not accepted.' : e.message);
      return;
    }
    route();
  });
  $('logout').addEventListener('click', () => needLogin(''));
  $('filters').addEventListener('submit', (ev) => {
    ev.preventDefault();
    view.pageTokens = [''];
    view.page = 0;
    guarded(loadList);
  });
  $('next-page').addEventListener('click', () => {
    if (!view.pageTokens[view.page + 1]) return;
    view.page += 1;
    guarded(loadList);
  });
  $('first-page').addEventListener('click', () => {
    view.page = 0;
    guarded(loadList);
  });
  $('t-cancel').addEventListener('click', () => act('cancel'));
  $('t-retry').addEventListener('click', () => act('retry'));
  window.addEventListener('hashchange', route);
  route();
}

init();
