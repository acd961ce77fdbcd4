// Soak: runs of k6-soak (echo, 200 ms sleep, echo) start at a steady rate
// while load-tests/run.sh SIGKILLs one of the two workers half-way through.
// Teardown then waits (bounded) for the backlog to drain: GET /v1/queues until
// ready + delayed + in_flight is 0 and no run is still running; then it lists
// every run of the workflow and requires each one to have succeeded.
// run.sh also compares the runs listed with the runs this script started.
import http from 'k6/http';
import { check, sleep } from 'k6';
import { Counter, Rate, Trend } from 'k6/metrics';
import { API, backlog, listRuns, params, startRun, TREND_STATS } from './lib/gantry.js';

const RATE = Number(__ENV.RATE || 20); // runs per second
const SECONDS = Number(__ENV.DURATION_S || 300);
const DRAIN_S = Number(__ENV.DRAIN_S || 120); // bound on the drain

const started = new Counter('runs_started');
const drainMs = new Trend('drain_ms', true);
const drained = new Rate('backlog_drained');
const listed = new Counter('runs_listed');
const listedOk = new Counter('runs_listed_succeeded');
const ended = new Rate('run_ended_succeeded');
// Created to finished of every run (server clock): its tail shows the runs
// whose node was on the killed worker and waited out the lease.
const runMs = new Trend('soak_run_ms', true);
const slow = new Counter('runs_over_5s');

export const options = {
  summaryTrendStats: TREND_STATS,
  teardownTimeout: `${DRAIN_S + 120}s`,
  scenarios: {
    soak: {
      executor: 'constant-arrival-rate',
      rate: RATE,
      timeUnit: '1s',
      duration: `${SECONDS}s`,
      preAllocatedVUs: 20,
      maxVUs: 100,
    },
  },
  thresholds: {
    http_req_failed: ['rate<0.01'],
    'http_req_duration{name:start_run}': ['p(95)<100'],
    runs_started: ['count>0'],
    backlog_drained: ['rate==1'],
    drain_ms: [`max<${DRAIN_S * 1000}`],
    run_ended_succeeded: ['rate==1'],
    dropped_iterations: ['count==0'],
  },
};

export default function () {
  const res = startRun('k6-soak', { n: __ITER });
  if (check(res, { 'start: 201': (r) => r.status === 201 })) started.add(1);
}

/** Whether any run is still `running` (1), none is (0), or -1 on error. */
function stillRunning() {
  const res = http.get(`${API}/v1/runs?workflow=k6-soak&status=running&limit=1`, params('list_runs'));
  if (res.status !== 200) return -1;
  return res.json('runs').length;
}

export function teardown() {
  const t0 = Date.now();
  const deadline = t0 + DRAIN_S * 1000;
  let empty = false;
  let last = -1;
  for (let i = 0; i < 10000 && Date.now() < deadline; i++) {
    last = backlog();
    if (last === 0 && stillRunning() === 0) {
      empty = true;
      break;
    }
    sleep(0.5);
  }
  drained.add(empty);
  drainMs.add(Date.now() - t0);
  console.log(`soak: backlog ${empty ? 'drained' : `NOT drained (last backlog ${last})`} after ${Date.now() - t0} ms`);

  const runs = listRuns('k6-soak', 1000) || [];
  const counts = {};
  for (const r of runs) {
    counts[r.status] = (counts[r.status] || 0) + 1;
    listed.add(1);
    if (r.status === 'succeeded') listedOk.add(1);
    ended.add(r.status === 'succeeded');
    if (!Number.isNaN(r.ms)) {
      runMs.add(r.ms);
      if (r.ms > 5000) slow.add(1);
    }
  }
  if (runs.length === 0) ended.add(false);
  console.log(`soak: ${runs.length} runs listed: ${JSON.stringify(counts)}; ${runs.filter((r) => r.ms > 5000).length} took over 5 s`);
}
