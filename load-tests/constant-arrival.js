// Starts runs of a small builtin workflow (k6-small: two nodes) at a constant
// arrival rate and holds the run-start request to p95 < 50 ms with under 1%
// failed requests. Run through load-tests/run.sh, which starts the stack.
import { check } from 'k6';
import { Counter } from 'k6/metrics';
import { startRun, TREND_STATS } from './lib/gantry.js';

const RATE = Number(__ENV.RATE || 100); // runs per second
const DURATION = __ENV.DURATION || '60s';

const started = new Counter('runs_started');

export const options = {
  summaryTrendStats: TREND_STATS,
  scenarios: {
    start_runs: {
      executor: 'constant-arrival-rate',
      rate: RATE,
      timeUnit: '1s',
      duration: DURATION,
      // Enough VUs up front that k6 never has to start one mid-test.
      preAllocatedVUs: Math.max(20, RATE),
      maxVUs: Math.max(100, RATE * 4),
    },
  },
  thresholds: {
    http_req_failed: ['rate<0.01'],
    'http_req_duration{name:start_run}': ['p(95)<50'],
    checks: ['rate>0.99'],
    // Every planned start happened: k6 dropped none for lack of VUs.
    dropped_iterations: ['count==0'],
  },
};

export default function () {
  const res = startRun('k6-small', { n: __ITER });
  const ok = check(res, {
    'start: 201': (r) => r.status === 201,
    'start: running with an id': (r) => r.status === 201 && !!r.json('id') && r.json('status') === 'running',
  });
  if (ok) started.add(1);
}
