// Many workflows in flight at once: each VU starts a diamond run (k6-diamond:
// fetch, then scan and a 50 ms lint in parallel, then report) and polls it to
// completion, then checks the final status and that values flowed through
// both branches into the join. Run through load-tests/run.sh.
import { check } from 'k6';
import { Counter, Rate, Trend } from 'k6/metrics';
import { finished, node, pollRun, startRun, millis, TREND_STATS } from './lib/gantry.js';

const VUS = Number(__ENV.VUS || 200);
const DURATION = __ENV.DURATION || '60s';
const POLL_S = Number(__ENV.POLL_S || 0.25);
const RUN_TIMEOUT_S = Number(__ENV.RUN_TIMEOUT_S || 60);

const completed = new Rate('workflow_completed'); // ended within RUN_TIMEOUT_S
const correct = new Rate('workflow_correct'); // succeeded with the right outputs
const runMs = new Trend('workflow_run_ms', true); // created_at to finished_at (server)
const runs = new Counter('workflows_finished');

export const options = {
  summaryTrendStats: TREND_STATS,
  scenarios: {
    workflows: {
      executor: 'constant-vus',
      vus: VUS,
      duration: DURATION,
      gracefulStop: `${RUN_TIMEOUT_S + 5}s`,
    },
  },
  thresholds: {
    http_req_failed: ['rate<0.01'],
    workflow_completed: ['rate==1'],
    workflow_correct: ['rate==1'],
    // A closed model: with every VU busy, a run's time is about VUS over the
    // throughput (Little's law), so the run time bound only catches stalls
    // and the throughput bound is the speed check.
    workflow_run_ms: ['p(95)<5000'],
    workflows_finished: ['count>0', 'rate>50'],
  },
};

export default function () {
  const tag = `vu${__VU}-it${__ITER}`;
  const n = __VU * 100000 + __ITER;
  const res = startRun('k6-diamond', { n, tag });
  if (!check(res, { 'start: 201': (r) => r.status === 201 })) return;
  const id = res.json('id');
  const { run, ok } = pollRun(id, finished, POLL_S, RUN_TIMEOUT_S);
  completed.add(ok);
  if (!ok) return;
  runs.add(1);
  runMs.add(millis(run.finished_at) - millis(run.created_at));
  const report = node(run, 'report');
  const good = check(run, {
    'run: succeeded': (r) => r.status === 'succeeded',
    'run: every node succeeded': (r) => r.nodes.length === 4 && r.nodes.every((x) => x.status === 'succeeded'),
    'run: join saw both branches': () =>
      !!report && !!report.output && report.output.n === n && report.output.message === `${tag} slept 50 ms`,
  });
  correct.add(good);
}
