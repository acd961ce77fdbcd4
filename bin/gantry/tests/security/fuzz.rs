//! Fuzzing the result-recording path (issue 10, must-show 2): process
//! agents run by ONE real worker emit random outputs and logs (random
//! bytes, NULs in strings and keys, invalid UTF-8, 10,000 nested arrays,
//! sizes just under and over the output and log limits, random exit codes).
//! After each batch every fuzzed node has reached a final state, every
//! stored error and log tail is storable text, and the plain runs started
//! beside the batch have finished on the same worker.
//!
//! Seeded and reproducible: the seed is printed, and `GANTRY_FUZZ_SEED=N`
//! replays a run. Bounded: [`BATCHES`] x [`PER_BATCH`] cases, each run
//! waited for with a deadline.

use super::pool::Pool;
use serde_json::{json, Value};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

const BATCHES: usize = 10;
const PER_BATCH: usize = 12;
/// Plain runs started beside each batch.
const PLAIN_PER_BATCH: usize = 5;
/// The worker's limits (gantry_executor::ExecLimits::default()).
const OUTPUT_LIMIT: usize = 1 << 20;
const LOG_LIMIT: usize = 64 << 10;

/// splitmix64: small, seedable, and the same on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// Shell (builtins only) that prints `bytes` exactly, as octal escapes.
fn print_bytes(bytes: &[u8], to_stderr: bool) -> String {
    let mut s = String::from("printf '");
    for b in bytes {
        let _ = write!(s, "\\{b:03o}");
    }
    s.push('\'');
    if to_stderr {
        s.push_str(" >&2");
    }
    s.push('\n');
    s
}

/// Shell printing `head`, then `n` times the ASCII `chunk`, then `tail`.
fn print_repeated(head: &str, chunk: &str, n: usize, tail: &str, to_stderr: bool) -> String {
    let redirect = if to_stderr { " >&2" } else { "" };
    format!(
        "printf '%s' '{head}'{redirect}\ni=0\nwhile [ $i -lt {n} ]; do printf '%s' '{chunk}'{redirect}; i=$((i+1)); done\nprintf '%s' '{tail}'{redirect}\n"
    )
}

/// A JSON string of exactly `len` bytes (`len` >= 2).
fn json_string_of(len: usize, to_stderr: bool) -> String {
    let body = len - 2;
    let chunk = "a".repeat(1024);
    let rest = "a".repeat(body % 1024);
    print_repeated("\"", &chunk, body / 1024, &format!("{rest}\""), to_stderr)
}

/// One fuzz case: the agent's script body and what its node must end as
/// (`None`: either final state is right).
struct Case {
    kind: &'static str,
    script: String,
    want: Option<&'static str>,
}

fn case(rng: &mut Rng) -> Case {
    let mut script = String::from("while read -r _; do :; done\n");
    let (kind, want) = match rng.below(10) {
        0 => {
            let n = rng.below(2048);
            script += &print_bytes(&rng.bytes(n), false);
            ("random stdout bytes", None)
        }
        1 => {
            // Valid JSON whose string or key holds U+0000.
            let v = if rng.below(2) == 0 {
                json!({"x": "a\0b", "n": rng.next()})
            } else {
                let mut key = serde_json::Map::new();
                key.insert("k\0".to_owned(), json!([1, 2, {"deep": "\0"}]));
                Value::Object(key)
            };
            script += &print_bytes(v.to_string().as_bytes(), false);
            ("nul in json", Some("failed"))
        }
        2 => {
            // A JSON string holding invalid UTF-8.
            let mut bytes = b"{\"x\": \"".to_vec();
            bytes.extend((0..1 + rng.below(64)).map(|_| 0x80 | (rng.next() as u8 & 0x7f)));
            bytes.extend_from_slice(b"\"}");
            script += &print_bytes(&bytes, false);
            ("invalid utf-8 in json", Some("failed"))
        }
        3 => {
            script += &print_repeated("", "[", 10_000, "", false);
            script += &print_repeated("", "]", 10_000, "", false);
            ("10,000 nested arrays", Some("failed"))
        }
        4 => {
            script += &json_string_of(OUTPUT_LIMIT - 1 - rng.below(16), false);
            ("output just under the limit", Some("succeeded"))
        }
        5 => {
            script += &json_string_of(OUTPUT_LIMIT + 1 + rng.below(16), false);
            ("output just over the limit", Some("failed"))
        }
        6 => {
            let n = rng.below(4096);
            let mut log = rng.bytes(n);
            log.extend_from_slice(b"\0\xff\xfe\0");
            script += &print_bytes(&log, true);
            script += "printf '{}'\n";
            ("random stderr bytes", Some("succeeded"))
        }
        7 => {
            // A log around its limit, with NULs and a split character.
            let n = LOG_LIMIT / 1024 - 1 + rng.below(3);
            script += &print_bytes(b"\0start\xe2\x82", true);
            script += &print_repeated("", &"z".repeat(1023), n, "", true);
            script += &print_bytes(b"\xe2\x82\xac\0end", true);
            script += "printf '{\"ok\": 1}'\n";
            ("log at the limit", Some("succeeded"))
        }
        8 => {
            let n = rng.below(512);
            script += &print_bytes(&rng.bytes(n), false);
            script += &print_bytes(&rng.bytes(n), true);
            let code = [0, 1, 3, 78][rng.below(4)];
            script += &format!("exit {code}\n");
            ("random exit code", None)
        }
        _ => {
            // Random bytes on both streams inside a JSON shell.
            let mut bytes = b"{\"k\": \"".to_vec();
            let n = rng.below(256);
            bytes.extend(rng.bytes(n));
            bytes.extend_from_slice(b"\"}");
            script += &print_bytes(&bytes, false);
            script += &print_bytes(&rng.bytes(n), true);
            ("random bytes in a json string", None)
        }
    };
    Case { kind, script, want }
}

fn seed() -> u64 {
    match std::env::var("GANTRY_FUZZ_SEED") {
        Ok(s) => s.trim().parse().expect("GANTRY_FUZZ_SEED must be a u64"),
        Err(_) => uuid::Uuid::new_v4().as_u64_pair().0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_outputs_and_logs_never_stall_the_worker() {
    let seed = seed();
    println!("fuzz seed {seed} (replay with GANTRY_FUZZ_SEED={seed})");
    let started = Instant::now();
    let mut rng = Rng(seed);
    let pool = Pool::start("8").await;
    let env = &pool.env;
    let mut kinds_seen = std::collections::BTreeSet::new();
    for batch in 0..BATCHES {
        let mut fuzzed = Vec::new();
        for i in 0..PER_BATCH {
            let n = batch * PER_BATCH + i;
            let c = case(&mut rng);
            let path = env.script(&format!("fuzz-{n}.sh"), &c.script);
            let name = format!("fuzz-{n}");
            env.agent(json!({
                "name": name, "runtime": "process", "command": [path.to_str().unwrap()],
                "timeout_s": 30,
                "retry": {"max_attempts": 2, "initial_delay_ms": 50, "max_delay_ms": 100, "multiplier": 2.0}
            }))
            .await;
            env.workflow(json!({"name": name, "nodes": [{"id": "f", "agent": name}]}))
                .await;
            fuzzed.push((env.start(&name, json!({})).await, c));
        }
        let plain = pool.plain_runs(PLAIN_PER_BATCH).await;
        for (id, c) in &fuzzed {
            let ctx = format!("seed {seed}, batch {batch}, case {:?} (run {id})", c.kind);
            let run = env.wait_run(id, Duration::from_secs(60)).await;
            let status = Pool::status(&run, "f");
            assert!(
                status == "succeeded" || status == "failed",
                "{ctx}: node ended {status}: {run:#}"
            );
            if let Some(want) = c.want {
                assert_eq!(status, want, "{ctx}: {run:#}");
            }
            let node = crate::common::node_of(&run, "f");
            assert!(
                !node["output"].to_string().contains("\\u0000"),
                "{ctx}: a stored output holds a NUL"
            );
            let attempts = pool.attempts(id, "f").await;
            assert!(!attempts.is_empty(), "{ctx}: no attempt recorded");
            for a in &attempts {
                assert_ne!(a["status"], "running", "{ctx}: attempt left running: {a:#}");
                let tail = a["log_tail"].as_str().unwrap_or("");
                // U+FFFD may stand for up to 3 bytes... of a NUL or invalid byte.
                assert!(
                    tail.len() <= 3 * LOG_LIMIT,
                    "{ctx}: tail of {} bytes",
                    tail.len()
                );
            }
            if status == "failed" {
                let error: &Value = &node["error"];
                assert!(error.is_string(), "{ctx}: a failed node says why: {run:#}");
            }
            kinds_seen.insert(c.kind);
        }
        pool.all_succeed(&plain, Duration::from_secs(60)).await;
        assert_eq!(
            pool.probe("/readyz").await,
            200,
            "seed {seed}, batch {batch}"
        );
    }
    assert_eq!(pool.probe("/healthz").await, 200);
    let log = pool.worker.log_text();
    assert!(
        !log.contains("giving up recording results"),
        "seed {seed}: a batch was given up:\n{log}"
    );
    println!(
        "fuzz seed {seed}: {} cases of {} kinds in {:?}",
        BATCHES * PER_BATCH,
        kinds_seen.len(),
        started.elapsed()
    );
}
