//! `gantry runs start --wait`: follow a run's server-sent events, printing
//! each node's progress, then print the outputs.

use crate::cli::ClientArgs;
use crate::client::{request, send};
use futures::StreamExt;
use serde_json::Value;
use std::process::ExitCode;
use std::time::Duration;

pub(crate) async fn follow(c: &ClientArgs, id: &str) -> anyhow::Result<ExitCode> {
    if let Err(e) = stream_events(c, id).await {
        eprintln!("event stream ended early ({e:#}); polling instead");
    }
    // Poll until terminal (the stream may have ended early), bounded to a day.
    let mut run = Value::Null;
    for _ in 0..(24 * 3600 * 2) {
        let (_, body) = send(request(c, reqwest::Method::GET, &format!("/v1/runs/{id}"))).await?;
        run = body;
        if !matches!(run["status"].as_str(), Some("running") | None) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let status = run["status"].as_str().unwrap_or("unknown").to_owned();
    println!("run {id} {status}");
    for n in run["nodes"].as_array().into_iter().flatten() {
        let node = n["id"].as_str().unwrap_or("?");
        match n["status"].as_str() {
            Some("succeeded") => println!("  {node}: {}", n["output"]),
            Some(s) => println!("  {node}: {s} {}", n["error"].as_str().unwrap_or("")),
            None => {}
        }
    }
    if status == "succeeded" {
        println!("output: {}", run["output"]);
    }
    Ok(if status == "succeeded" {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `gantry runs show`: the run, each node with its status, skip reason,
/// instance counts and error, and the child runs (`children`, a page of
/// `GET /v1/runs?parent=`).
pub(crate) fn describe(run: &Value, children: &Value) -> String {
    let s = |v: &Value| v.as_str().unwrap_or("-").to_owned();
    let mut out = format!(
        "run {} of {} v{}: {}\n",
        s(&run["id"]),
        s(&run["workflow"]),
        run["version"],
        s(&run["status"])
    );
    if let Some(p) = run["parent"].as_object() {
        let index = p
            .get("index")
            .and_then(Value::as_u64)
            .map(|i| format!("[{i}]"))
            .unwrap_or_default();
        out.push_str(&format!(
            "parent: run {} node {}{index}\n",
            p.get("run").map(s).unwrap_or_default(),
            p.get("node").map(s).unwrap_or_default()
        ));
    }
    if let Some(tags) = run["tags"].as_object().filter(|t| !t.is_empty()) {
        let tags: Vec<String> = tags
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
            .collect();
        out.push_str(&format!("tags: {}\n", tags.join(", ")));
    }
    for n in run["nodes"].as_array().into_iter().flatten() {
        let mut line = format!("  {:<24} {:<16}", s(&n["id"]), s(&n["status"]));
        if let Some(reason) = n["skip_reason"].as_str() {
            line.push_str(&format!(" ({reason})"));
        }
        if let Some(w) = n["wait"].as_object().filter(|_| n["status"] == "waiting") {
            let field = |k: &str| w.get(k).map(s).unwrap_or_default();
            line.push_str(&format!(
                " for {} key {} until {}",
                field("event"),
                field("key"),
                field("deadline")
            ));
        }
        line.push_str(&instances(&n["instances"]));
        if let Some(e) = n["error"].as_str().filter(|_| n["status"] == "failed") {
            line.push_str(&format!(" {e}"));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    let kids = children["runs"].as_array().cloned().unwrap_or_default();
    if !kids.is_empty() {
        out.push_str(&format!("child runs ({}):\n", kids.len()));
        for k in &kids {
            out.push_str(&format!(
                "  {} {} {}\n",
                s(&k["id"]),
                s(&k["workflow"]),
                s(&k["status"])
            ));
        }
    }
    if !run["output"].is_null() {
        out.push_str(&format!("output: {}\n", run["output"]));
    }
    out
}

/// A map node's instance counts, as ` [3/10 succeeded, 2 running]`.
fn instances(counts: &Value) -> String {
    let Some(counts) = counts.as_object() else {
        return String::new();
    };
    let total = counts.get("total").and_then(Value::as_u64).unwrap_or(0);
    let done = counts.get("succeeded").and_then(Value::as_u64).unwrap_or(0);
    let mut out = format!(" [{done}/{total} succeeded");
    for (status, n) in counts {
        if status != "total" && status != "succeeded" {
            out.push_str(&format!(", {n} {status}"));
        }
    }
    out.push(']');
    out
}

async fn stream_events(c: &ClientArgs, id: &str) -> anyhow::Result<()> {
    let resp = request(c, reqwest::Method::GET, &format!("/v1/runs/{id}/events"))
        .header("Accept", "text/event-stream")
        .send()
        .await?
        .error_for_status()?;
    let mut body = resp.bytes_stream();
    let mut buf = String::new();
    let mut event = String::new();
    while let Some(chunk) = body.next().await {
        buf.push_str(&String::from_utf8_lossy(&chunk?));
        while let Some(pos) = buf.find('\n') {
            let line = buf[..pos].trim_end_matches('\r').to_owned();
            buf.drain(..=pos);
            if let Some(e) = line.strip_prefix("event:") {
                event = e.trim().to_owned();
            } else if let Some(d) = line.strip_prefix("data:") {
                let data: Value = serde_json::from_str(d.trim()).unwrap_or(Value::Null);
                match event.as_str() {
                    "node" => println!(
                        "  {} -> {}{}{}",
                        data["node"].as_str().unwrap_or("?"),
                        data["status"].as_str().unwrap_or("?"),
                        instances(&data["instances"]),
                        data["error"]
                            .as_str()
                            .map(|e| format!(" ({e})"))
                            .unwrap_or_default()
                    ),
                    "run" => return Ok(()),
                    _ => {}
                }
            }
        }
    }
    Ok(())
}
