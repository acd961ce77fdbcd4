// Workflows with an approval gate (k6-approval: prepare, gate with
// "approval": "required", after). Each VU starts a run, polls until the gate
// is waiting_approval, approves it through the API at once, and measures how
// long the run takes from the approve request to succeeded:
//   approval_to_succeeded_ms  approve request sent -> run finished_at (server clock, same host)
//   approval_observed_ms      approve request sent -> a poll first sees succeeded
// Run through load-tests/run.sh.
import http from 'k6/http';
import { check } from 'k6';
import { Rate, Trend } from 'k6/metrics';
import { API, finished, millis, node, params, pollRun, startRun, TREND_STATS } from './lib/gantry.js';

const VUS = Number(__ENV.VUS || 20);
const DURATION = __ENV.DURATION || '60s';
const POLL_S = Number(__ENV.POLL_S || 0.05);
const TIMEOUT_S = Number(__ENV.RUN_TIMEOUT_S || 30);

const toSucceeded = new Trend('approval_to_succeeded_ms', true);
const observed = new Trend('approval_observed_ms', true);
const approveOk = new Rate('approve_accepted');
const succeeded = new Rate('approved_run_succeeded');

export const options = {
  summaryTrendStats: TREND_STATS,
  scenarios: {
    approvals: {
      executor: 'constant-vus',
      vus: VUS,
      duration: DURATION,
      gracefulStop: `${2 * TIMEOUT_S + 5}s`,
    },
  },
  thresholds: {
    http_req_failed: ['rate<0.01'],
    approval_to_succeeded_ms: ['p(95)<500', 'p(99)<1000'],
    approve_accepted: ['rate==1'],
    approved_run_succeeded: ['rate==1'],
  },
};

const waiting = (run) => {
  const gate = node(run, 'gate');
  return (gate && gate.status === 'waiting_approval') || finished(run);
};

export default function () {
  const n = __VU * 100000 + __ITER;
  const res = startRun('k6-approval', { n });
  if (!check(res, { 'start: 201': (r) => r.status === 201 })) return;
  const id = res.json('id');

  const parked = pollRun(id, waiting, POLL_S, TIMEOUT_S);
  const gate = parked.run && node(parked.run, 'gate');
  if (!check(gate, { 'gate: waiting_approval': (g) => !!g && g.status === 'waiting_approval' })) {
    approveOk.add(false);
    return;
  }

  const sent = Date.now();
  const approve = http.post(`${API}/v1/runs/${id}/nodes/gate/approve`, null, params('approve'));
  const accepted = approve.status === 200;
  approveOk.add(accepted);
  if (!accepted) return;

  const done = pollRun(id, finished, POLL_S, TIMEOUT_S);
  const run = done.run;
  const ok = done.ok && run.status === 'succeeded';
  succeeded.add(ok);
  check(run, {
    'run: succeeded': () => ok,
    'run: value passed the gate': (r) => {
      const after = r && node(r, 'after');
      return !!after && !!after.output && after.output.n === n;
    },
  });
  if (!ok) return;
  observed.add(Date.now() - sent);
  toSucceeded.add(millis(run.finished_at) - sent);
}
