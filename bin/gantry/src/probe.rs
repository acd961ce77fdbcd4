//! `gantry probe URL`: the container health check of the empty (`FROM scratch`)
//! image, which has no curl or wget. Exit 0 when URL answers 2xx in time.

use std::process::ExitCode;
use std::time::Duration;

pub(crate) async fn run(url: &str, timeout_ms: u64) -> anyhow::Result<ExitCode> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(timeout_ms.max(1)))
        .build()?;
    match client.get(url).send().await {
        Ok(resp) if resp.status().is_success() => Ok(ExitCode::SUCCESS),
        Ok(resp) => {
            eprintln!("probe {url}: {}", resp.status());
            Ok(ExitCode::FAILURE)
        }
        Err(e) => {
            // The whole chain: "error sending request" alone hides a refused
            // connection or a failed name lookup.
            eprintln!("probe {url}: {:#}", anyhow::Error::from(e));
            Ok(ExitCode::FAILURE)
        }
    }
}
