// Hammers /v1 with one token well above its rate limit (run.sh configures
// GANTRY_RATE_LIMIT_PER_S=RATE_LIMIT for this script) and checks the limiter:
// 429s are seen, each carries a Retry-After of at least one second, no answer
// is a 5xx, and the requests let through stay within the token's budget
// (rate x seconds + a burst of twice the rate). Run through load-tests/run.sh.
import http from 'k6/http';
import { check } from 'k6';
import { Counter, Rate } from 'k6/metrics';
import { API, params, TREND_STATS } from './lib/gantry.js';

const LIMIT = Number(__ENV.RATE_LIMIT || 20); // the API's per-token rate
const RATE = Number(__ENV.RATE || 200); // what this script sends per second
const SECONDS = Number(__ENV.DURATION_S || 20);

// Up to a second of slack on each side of the window: k6 starts and stops
// its clock a little apart from the server's buckets.
const BUDGET = LIMIT * (SECONDS + 1) + 2 * LIMIT;

const limited = new Counter('rate_limited_429');
const allowed = new Counter('allowed_200');
const serverErrors = new Counter('server_errors_5xx');
const unexpected = new Counter('unexpected_status');
const retryAfter = new Rate('retry_after_valid');

http.setResponseCallback(http.expectedStatuses(200, 429));

export const options = {
  summaryTrendStats: TREND_STATS,
  scenarios: {
    hammer: {
      executor: 'constant-arrival-rate',
      rate: RATE,
      timeUnit: '1s',
      duration: `${SECONDS}s`,
      preAllocatedVUs: 20,
      maxVUs: 100,
    },
  },
  thresholds: {
    rate_limited_429: ['count>0'],
    allowed_200: ['count>0', `count<=${BUDGET}`],
    server_errors_5xx: ['count==0'],
    unexpected_status: ['count==0'],
    retry_after_valid: ['rate==1'],
    // Everything answered is a 200 or a 429 (callback above).
    http_req_failed: ['rate==0'],
  },
};

export default function () {
  const res = http.get(`${API}/v1/agents`, params('list_agents'));
  if (res.status === 200) {
    allowed.add(1);
  } else if (res.status === 429) {
    limited.add(1);
    const ra = res.headers['Retry-After'];
    const valid = /^\d+$/.test(ra || '') && Number(ra) >= 1;
    retryAfter.add(valid);
    check(res, {
      '429: Retry-After >= 1 s': () => valid,
      '429: SPEC error body': (r) => {
        try {
          return typeof r.json('error.code') === 'string';
        } catch (_) {
          return false;
        }
      },
    });
  } else if (res.status >= 500) {
    serverErrors.add(1);
  } else {
    unexpected.add(1);
  }
}
