// Shared helpers of the k6 scripts: the API address and bearer token from the
// environment (set by load-tests/run.sh), and small wrappers for the calls
// every script makes. Every loop here is bounded in count and in time.
import http from 'k6/http';
import { sleep } from 'k6';

export const API = (__ENV.GANTRY_API_URL || 'http://127.0.0.1:8080').replace(/\/$/, '');
const TOKEN = __ENV.GANTRY_TOKEN || '';

// Loopback only: the scripts refuse to aim anywhere else.
if (!/^https?:\/\/(127\.\d+\.\d+\.\d+|localhost|\[::1\])(:\d+)?$/.test(API)) {
  throw new Error(`GANTRY_API_URL must be a loopback address, got ${API}`);
}

/** Request parameters with the bearer token and a `name` tag. */
export function params(name, extra) {
  const headers = { 'Content-Type': 'application/json' };
  if (TOKEN) headers.Authorization = `Bearer ${TOKEN}`;
  return Object.assign({ headers, tags: { name } }, extra || {});
}

/** POST /v1/workflows/{name}/runs, tagged `start_run`. */
export function startRun(workflow, input, extra) {
  return http.post(
    `${API}/v1/workflows/${workflow}/runs`,
    JSON.stringify({ input: input || {} }),
    params('start_run', extra),
  );
}

/** GET /v1/runs/{id}, tagged `get_run`; the parsed run or null. */
export function getRun(id) {
  const res = http.get(`${API}/v1/runs/${id}`, params('get_run'));
  if (res.status !== 200) return null;
  try {
    return res.json();
  } catch (_) {
    return null;
  }
}

/**
 * Polls a run every `everyS` seconds until `done(run)` holds or `timeoutS`
 * passes. Returns the last run seen (null if none could be read) and
 * whether `done` held.
 */
export function pollRun(id, done, everyS, timeoutS) {
  const deadline = Date.now() + timeoutS * 1000;
  let run = null;
  for (let i = 0; i < 100000 && Date.now() < deadline; i++) {
    run = getRun(id) || run;
    if (run && done(run)) return { run, ok: true };
    sleep(everyS);
  }
  return { run, ok: false };
}

export const finished = (run) => run.status !== 'running';

/** One node of a run by id. */
export function node(run, id) {
  return (run.nodes || []).find((n) => n.id === id);
}

/** Milliseconds since the epoch of an RFC 3339 time with any fraction. */
export function millis(ts) {
  if (!ts) return NaN;
  // Trim the fraction to milliseconds: not every engine parses microseconds.
  const m = /^(.*T\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$/.exec(ts);
  if (!m) return Date.parse(ts);
  const frac = m[2] ? m[2].slice(0, 4).padEnd(4, '0') : '.000';
  return Date.parse(`${m[1]}${frac}${m[3]}`);
}

/** Sum of ready, delayed and in-flight jobs over every queue, or -1. */
export function backlog() {
  const res = http.get(`${API}/v1/queues`, params('queues'));
  if (res.status !== 200) return -1;
  const queues = res.json('queues') || [];
  return queues.reduce((n, q) => n + q.ready + q.delayed + q.in_flight, 0);
}

/**
 * Every run of a workflow (pages of 500), as [{id, status, ms}] (ms: created
 * to finished, server clock; NaN while running), or null when a
 * page could not be read. Bounded by `maxPages`.
 */
export function listRuns(workflow, maxPages) {
  const out = [];
  let cursor = '';
  for (let page = 0; page < maxPages; page++) {
    const q = `workflow=${workflow}&limit=500${cursor ? `&cursor=${cursor}` : ''}`;
    const res = http.get(`${API}/v1/runs?${q}`, params('list_runs'));
    if (res.status !== 200) return null;
    const body = res.json();
    for (const r of body.runs) {
      out.push({ id: r.id, status: r.status, ms: millis(r.finished_at) - millis(r.created_at) });
    }
    if (!body.next_cursor) return out;
    cursor = body.next_cursor;
  }
  return null;
}

/** Trend stats every script's summary keeps (p99 included). */
export const TREND_STATS = ['avg', 'min', 'med', 'max', 'p(90)', 'p(95)', 'p(99)', 'count'];
