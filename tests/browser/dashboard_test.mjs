// The dashboard in a real browser: Debian's headless Chromium driven by
// puppeteer-core, against a real videotaskd (mock backend, SQLite in a temp
// dir, bearer tokens on) on free loopback ports. Tasks are submitted with
// the real `videotask` CLI over gRPC.
//
//   node dashboard_test.mjs --videotaskd BIN --cli BIN --images DIR --out DIR
//                           [--chromium /usr/bin/chromium]
//
// Checks: without a token the login form shows and no data does; the list
// shows submitted tasks and their states change live; a failed task's page
// says why (error and provider code); a finished task's page plays its
// video (duration reported, seeking over Range requests) and links a
// download; cancelling from the page cancels the task, as GetTask shows;
// retry shows only when the service has RetryTask, and then works; a
// prompt and a label holding HTML render as text. Screenshots of the
// overview and of a task page are saved in --out.
import { spawn, execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, existsSync, mkdirSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import puppeteer from 'puppeteer-core';

const run = promisify(execFile);

function args() {
  const out = { chromium: '/usr/bin/chromium' };
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i += 2) out[argv[i].replace(/^--/, '')] = argv[i + 1];
  for (const need of ['videotaskd', 'cli', 'images', 'out']) {
    if (!out[need]) throw new Error(`--${need} is required`);
  }
  return out;
}

const opts = args();
const TOKEN = 'browser-test-token-5f0c1e9a7d3b';
const XSS = '<img src=x onerror=alert(1)>';
let failures = 0;
let passed = 0;

function check(ok, what, detail = '') {
  if (ok) {
    passed += 1;
    console.log(`ok - ${what}`);
  } else {
    failures += 1;
    console.log(`not ok - ${what}${detail ? `: ${detail}` : ''}`);
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitFor(fn, what, timeoutMs = 20000) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

// ---- the server ----

const work = mkdtempSync(join(tmpdir(), 'videotask-browser-'));
const tokenFile = join(work, 'tokens');
writeFileSync(tokenFile, `# test token\n${TOKEN}\n`);
const logPath = join(work, 'videotaskd.log');
const grpcPortFile = join(work, 'grpc.port');
const httpPortFile = join(work, 'http.port');
const daemon = spawn(opts.videotaskd, [
  '--listen=127.0.0.1:0', `--port_file=${grpcPortFile}`,
  '--http_listen=127.0.0.1:0', `--http_port_file=${httpPortFile}`,
  `--data_dir=${join(work, 'data')}`, '--backends=mock', `--auth_token_file=${tokenFile}`,
  '--log_level=debug',
], { stdio: ['ignore', 'pipe', 'pipe'] });
let log = '';
daemon.stdout.on('data', (d) => { log += d; });
daemon.stderr.on('data', (d) => { log += d; });
let daemonExited = false;
daemon.on('exit', () => { daemonExited = true; });

const readPort = (f) => (existsSync(f) ? parseInt(readFileSync(f, 'utf8'), 10) || 0 : 0);

async function cli(...argv) {
  const grpc = readPort(grpcPortFile);
  const { stdout } = await run(opts.cli, [`--server=127.0.0.1:${grpc}`, `--token=${TOKEN}`, ...argv]);
  return stdout;
}

async function submit(image, prompt, labels) {
  const flags = [];
  for (const [k, v] of Object.entries(labels)) flags.push('-l', `${k}=${v}`);
  const out = await cli('submit', join(opts.images, image), '-p', prompt, ...flags);
  return out.trim().split('\n').pop().trim();
}

async function getTask(id) {
  return JSON.parse(await cli('--json', 'get', id));
}

let browser = null;

// 1. Without a token: the login form, and no data.
async function signIn(t) {
  const { page, base, responses } = t;
  const stuckId = t.ids.stuck;
  const first = await page.goto(`${base}/`, { waitUntil: 'networkidle0' });
  const csp = first.headers()['content-security-policy'] || '';
  check(/default-src 'none'/.test(csp) && /script-src 'self'/.test(csp) && !/unsafe/.test(csp),
    'the page carries a strict Content-Security-Policy', csp);
  await page.waitForSelector('#login:not([hidden])', { timeout: 10000 });
  const noData = await page.evaluate(() => ({
    home: document.getElementById('home').hidden,
    task: document.getElementById('task').hidden,
    overviewRows: document.querySelectorAll('#overview tbody tr').length,
    taskRows: document.querySelectorAll('#tasks tbody tr').length,
  }));
  check(noData.home && noData.task && noData.overviewRows === 0 && noData.taskRows === 0,
    'without a token the login form shows and no data does', JSON.stringify(noData));
  const apiAnswers = responses.filter((r) => r.url.includes('/api/'));
  check(apiAnswers.length > 0 && apiAnswers.every((r) => r.status === 401),
    'data requests without a token get 401', JSON.stringify(apiAnswers.map((r) => r.status)));

  await page.type('#login-token', 'not-the-token-at-all-123');
  await page.click('#login-form button[type=submit]');
  await page.waitForFunction(
    () => document.getElementById('login-error').textContent.includes('not accepted'));
  check(true, 'a wrong token is refused on the login form');

  await page.type('#login-token', TOKEN);
  await page.click('#login-form button[type=submit]');
  await page.waitForSelector('#home:not([hidden])', { timeout: 10000 });
  await page.waitForSelector(`#tasks tr[data-id="${stuckId}"]`, { timeout: 10000 });
  check(true, 'after signing in the list shows the submitted tasks');
}

// 2. Live: a task submitted now appears and moves to SUCCEEDED without a reload.
async function watchTheQueueMove(t) {
  const { page, base, requests } = t;
  const liveId = await submit('product_hero_03.png', XSS, {
    'mock.latency_ms': '2500', 'mock.progress_steps': '5', note: '<b onmouseover=alert(2)>x</b>',
  });
  t.ids.live = liveId;
  const seenStates = new Set();
  await waitFor(async () => {
    const s = await page.$eval(`#tasks tr[data-id="${liveId}"]`, (tr) => tr.dataset.state)
      .catch(() => null);
    if (s) seenStates.add(s);
    return s === 'SUCCEEDED';
  }, 'the new task to reach SUCCEEDED on the list', 30000);
  check([...seenStates].some((s) => s !== 'SUCCEEDED'),
    'the list shows a new task and its state changes live', [...seenStates].join(' -> '));
  const navigations = requests.filter((r) => r.url === `${base}/` || r.url.endsWith('/index.html'));
  check(navigations.length === 1, 'no page reload was needed', String(navigations.length));
  const succeededCount = await page.$eval('#overview tr[data-backend="mock"] td[data-state="SUCCEEDED"]',
    (td) => td.textContent);
  check(succeededCount === '1', 'the overview counts the finished task live', succeededCount);
  const eventStreams = requests.filter((r) => r.url.endsWith('/api/events'));
  check(eventStreams.length >= 1, 'the overview is fed by a Server-Sent Events stream');
  await page.screenshot({ path: join(opts.out, 'dashboard-overview.png'), fullPage: true });
}

// 3. A finished task's page: the prompt renders as text, the video plays and seeks.
async function playAFinishedVideo(t) {
  const { page, base, responses } = t;
  const liveId = t.ids.live;
  await page.goto(`${base}/#/task/${liveId}`, { waitUntil: 'domcontentloaded' });
  await page.waitForSelector('#task:not([hidden])');
  await page.waitForFunction(
    (id) => document.getElementById('t-id').textContent === id, {}, liveId);
  const prompt = await page.$eval('dd[data-field="prompt"]', (dd) => ({
    text: dd.textContent, elements: dd.children.length,
  }));
  const injected = await page.evaluate(() => document.querySelectorAll(
    '#t-fields img, #t-spec img, #t-spec b, #tasks img').length);
  check(prompt.text === XSS && prompt.elements === 0 && injected === 0,
    'a prompt and a label holding HTML render as text', JSON.stringify(prompt));
  await page.waitForSelector('#t-video:not([hidden])', { timeout: 10000 });
  const duration = await page.waitForFunction(() => {
    const v = document.getElementById('t-video');
    return v.readyState >= 1 && Number.isFinite(v.duration) && v.duration > 0 && v.duration;
  }, { timeout: 15000 }).then((h) => h.jsonValue());
  check(duration > 1.5 && duration < 2.5, 'the task page plays its video: <video> reports its duration',
    String(duration));
  const seeked = await page.evaluate(() => new Promise((resolve) => {
    const v = document.getElementById('t-video');
    v.muted = true;
    v.addEventListener('seeked', () => resolve(v.currentTime), { once: true });
    v.currentTime = 1.5;
    setTimeout(() => resolve(-1), 10000);
  }));
  check(seeked > 1.4, 'the video seeks', String(seeked));
  const played = await page.evaluate(() => document.getElementById('t-video').play()
    .then(() => true, (e) => String(e)));
  check(played === true, 'the video starts playing', String(played));
  const ranged = responses.filter((r) => r.url.includes('/media/') && r.status === 206);
  check(ranged.length > 0 && ranged.every((r) => /^bytes \d+-\d+\/\d+$/.test(
    r.headers['content-range'] || '')), 'video bytes come as HTTP Range answers (206)',
  JSON.stringify(ranged.map((r) => [r.range, r.headers['content-range']])));
  const download = await page.$eval('#t-download', (a) => ({
    hidden: a.hidden, href: a.getAttribute('href'), name: a.getAttribute('download'),
  }));
  check(!download.hidden && /^\/media\/[0-9a-f]{32}\/video\?download=1$/.test(download.href) &&
    download.name === 'product_hero_video.mp4', 'the page links a download of the video',
  JSON.stringify(download));
  const dl = await page.evaluate(async (href) => {
    const r = await fetch(href);
    return { status: r.status, disposition: r.headers.get('content-disposition'),
      size: (await r.arrayBuffer()).byteLength };
  }, download.href);
  const liveTask = await getTask(liveId);
  check(dl.status === 200 && /attachment/.test(dl.disposition) &&
    dl.size === Number(liveTask.output_size_bytes ?? liveTask.outputSizeBytes),
  'the download link serves the whole video', JSON.stringify(dl));
  const caption = await page.$eval('#t-image-caption', (c) => c.textContent);
  check(/not kept/.test(caption), 'a finished task\'s page says its input image is not kept',
    caption);
  await page.screenshot({ path: join(opts.out, 'dashboard-task.png'), fullPage: true });
}

// 4. A failed task's page says why it failed.
async function readWhyItFailed(t) {
  const { page, base } = t;
  const failedId = t.ids.failed;
  await page.goto(`${base}/#/task/${failedId}`, { waitUntil: 'domcontentloaded' });
  await page.waitForFunction((id) => document.getElementById('t-id').textContent === id &&
    document.querySelector('dd[data-field="error code"]'), {}, failedId);
  const why = await page.evaluate(() => Object.fromEntries(
    [...document.querySelectorAll('#t-fields dd')].map((dd) => [dd.dataset.field, dd.textContent])));
  check(why.state === 'FAILED' && why['provider code'] === 'SAFETY.INPUT.IMAGE' && why.error &&
    why['error code'], 'a failed task\'s page shows the error and its provider code',
  JSON.stringify(why));
  const cancelHidden = await page.$eval('#t-cancel', (b) => b.hidden);
  check(cancelHidden, 'a finished task offers no cancel');
  const failedImage = await page.waitForFunction(() => {
    const img = document.getElementById('t-image');
    return !img.hidden && img.complete && img.naturalWidth > 0;
  }, { timeout: 10000 }).then(() => true, () => false);
  check(failedImage, 'a failed task\'s page shows its input image (kept for a retry)');
  await page.screenshot({ path: join(opts.out, 'dashboard-failed-task.png'), fullPage: true });
  const caps = await page.evaluate(async (token) => (await fetch('/api/capabilities',
    { headers: { Authorization: `Bearer ${token}` } })).json(), TOKEN);
  const retryHidden = await page.$eval('#t-retry', (b) => b.hidden);
  if (caps.retry) {
    check(!retryHidden, 'a failed task offers a retry (the service has RetryTask)');
    await page.click('#t-retry');
    await page.waitForFunction(() => document.getElementById('t-action-result').textContent
      === 'Queued again.', { timeout: 10000 });
    // The mock fails this task again 50 ms into the new try, so GetTask may
    // already show FAILED: the second entry in attempts is what proves it
    // went back to the queue.
    const retried = await getTask(failedId);
    check((retried.attempts ?? []).length === 2,
      'retrying from the page starts a second try of the task, as GetTask shows',
      JSON.stringify(retried.attempts));
  } else {
    check(retryHidden, 'no retry is offered: this server has no RetryTask');
  }
}

// 5. Cancel a stuck task from its page.
async function cancelAStuckTask(t) {
  const { page, base } = t;
  const stuckId = t.ids.stuck;
  await page.goto(`${base}/#/task/${stuckId}`, { waitUntil: 'domcontentloaded' });
  await page.waitForFunction((id) => document.getElementById('t-id').textContent === id,
    {}, stuckId);
  await page.waitForSelector('#t-cancel:not([hidden])');
  const thumb = await page.waitForFunction(() => {
    const img = document.getElementById('t-image');
    return !img.hidden && img.complete && img.naturalWidth > 0 && img.naturalWidth;
  }, { timeout: 10000 }).then((h) => h.jsonValue()).catch(() => 0);
  check(thumb === 320, 'the task page shows the input image as a thumbnail', String(thumb));
  await page.click('#t-cancel');
  await page.waitForFunction(() => document.getElementById('t-action-result').textContent
    === 'Cancelled.', { timeout: 10000 });
  const stuck = await getTask(stuckId);
  check(stuck.state === 'CANCELLED', 'cancelling from the page cancels the task, as GetTask shows',
    stuck.state);
  const shownState = await page.$eval('dd[data-field="state"]', (dd) => dd.textContent);
  check(shownState === 'CANCELLED', 'the page shows the cancelled state', shownState);
}

// 6. The token: this tab's sessionStorage only; never in a URL or the log.
async function keepTheTokenSecret(t) {
  const { page, base, requests, dialogs, pageErrors } = t;
  const storage = await page.evaluate(() => ({
    session: sessionStorage.getItem('videotask.token'), local: localStorage.length,
    cookie: document.cookie,
  }));
  check(storage.session === TOKEN && storage.local === 0 && storage.cookie === '',
    'the token is kept in sessionStorage only', JSON.stringify({ ...storage, session: !!storage.session }));
  check(requests.every((r) => !r.url.includes(TOKEN)), 'no request URL carries the token');
  const other = await browser.createBrowserContext();
  const stranger = await other.newPage();
  await stranger.goto(`${base}/`, { waitUntil: 'networkidle0' });
  const strangerSees = await stranger.evaluate(() => !document.getElementById('login').hidden);
  check(strangerSees, 'another browser context is not signed in');
  await other.close();
  check(!log.includes(TOKEN), 'the server log holds no token');

  check(dialogs.length === 0, 'no script ran from caller text (no alert)', dialogs.join(', '));
  check(pageErrors.length === 0, 'no script errors or CSP violations', pageErrors.join(' | '));
}

async function main() {
  await waitFor(() => daemonExited || (readPort(grpcPortFile) && readPort(httpPortFile)),
    'videotaskd to serve');
  if (daemonExited) throw new Error(`videotaskd exited:\n${log}`);
  const base = `http://127.0.0.1:${readPort(httpPortFile)}`;
  mkdirSync(opts.out, { recursive: true });

  // Tasks that exist before the page opens: one fails with a provider code,
  // one is stuck (to be cancelled), one carries HTML in its prompt and label.
  const failedId = await submit('shot_01.png', 'fails at the provider', {
    'mock.outcome': 'fail', 'mock.failure_code': 'SAFETY.INPUT.IMAGE', 'mock.latency_ms': '50',
  });
  const stuckId = await submit('shot_02_draft.png', 'never finishes', {
    'mock.latency_ms': '3600000',
  });

  browser = await puppeteer.launch({
    executablePath: opts.chromium,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--autoplay-policy=no-user-gesture-required',
      '--no-first-run', '--disable-extensions', '--disable-background-networking'],
  });
  const page = await browser.newPage();
  await page.setViewport({ width: 1280, height: 900 });
  const dialogs = [];
  page.on('dialog', async (d) => { dialogs.push(d.message()); await d.dismiss(); });
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  page.on('console', (m) => {
    if (m.type() === 'error' && !/401|Unauthorized/.test(m.text())) pageErrors.push(m.text());
  });
  const requests = [];
  page.on('request', (r) => requests.push({ url: r.url(), headers: r.headers() }));
  const responses = [];
  page.on('response', (r) => responses.push({ url: r.url(), status: r.status(),
    headers: r.headers(), range: r.request().headers().range }));

  const t = { page, base, requests, responses, dialogs, pageErrors,
    ids: { failed: failedId, stuck: stuckId, live: null } };
  await signIn(t);
  await watchTheQueueMove(t);
  await playAFinishedVideo(t);
  await readWhyItFailed(t);
  await cancelAStuckTask(t);
  await keepTheTokenSecret(t);
}

let crashed = null;
try {
  await main();
} catch (e) {
  crashed = e;
  console.log(`not ok - the test stopped: ${e.stack || e}`);
  failures += 1;
} finally {
  if (browser) await browser.close().catch(() => {});
  daemon.kill('SIGTERM');
  await waitFor(() => daemonExited, 'videotaskd to exit', 15000).catch(() => daemon.kill('SIGKILL'));
  writeFileSync(join(opts.out, 'videotaskd.log'), log);
  if (failures === 0) rmSync(work, { recursive: true, force: true });
}
console.log(`${passed} passed, ${failures} failed; screenshots in ${opts.out}`);
if (crashed) console.log(`videotaskd log:\n${log.slice(-4000)}`);
process.exit(failures === 0 ? 0 : 1);
