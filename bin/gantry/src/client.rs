//! Client commands against the HTTP API (`GANTRY_API_URL`, `GANTRY_TOKEN`).

use crate::cli::ClientArgs;
use anyhow::{bail, Context};
use serde_json::{json, Value};
use std::path::Path;
use std::process::ExitCode;

pub(crate) fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(5))
        .build()
        .expect("http client")
}

pub(crate) fn request(
    c: &ClientArgs,
    method: reqwest::Method,
    path: &str,
) -> reqwest::RequestBuilder {
    let url = format!("{}{}", c.api_url.trim_end_matches('/'), path);
    let rb = http().request(method, url);
    match &c.token {
        Some(t) => rb.bearer_auth(t),
        None => rb,
    }
}

/// Send, and turn an error body into a readable error.
pub(crate) async fn send(rb: reqwest::RequestBuilder) -> anyhow::Result<(u16, Value)> {
    let resp = rb
        .send()
        .await
        .context("cannot reach the gantry api (GANTRY_API_URL)")?;
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    if status >= 400 {
        let err = &body["error"];
        let mut msg = format!(
            "{} {}: {}",
            status,
            err["code"].as_str().unwrap_or("error"),
            err["message"].as_str().unwrap_or("")
        );
        if let Some(details) = err["details"].as_array() {
            for d in details {
                msg.push_str(&format!(
                    "\n  - {}: {}",
                    d["field"].as_str().unwrap_or(""),
                    d["message"].as_str().unwrap_or("")
                ));
            }
        }
        bail!(msg);
    }
    Ok((status, body))
}

/// Read a JSON or YAML file.
fn read_doc(file: &Path) -> anyhow::Result<Value> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    match serde_json::from_str(&text) {
        Ok(v) => Ok(v),
        Err(json_err) => serde_yaml_ng::from_str(&text).map_err(|yaml_err| {
            anyhow::anyhow!(
                "{} is neither JSON ({json_err}) nor YAML ({yaml_err})",
                file.display()
            )
        }),
    }
}

pub(crate) async fn apply(c: &ClientArgs, kind: &str, file: &Path) -> anyhow::Result<()> {
    let doc = read_doc(file)?;
    let docs = match doc {
        Value::Array(items) => items,
        one => vec![one],
    };
    for d in docs {
        let (_, body) =
            send(request(c, reqwest::Method::POST, &format!("/v1/{kind}")).json(&d)).await?;
        match body.get("version") {
            Some(v) => println!(
                "{kind}/{} version {v} registered",
                body["name"].as_str().unwrap_or("?")
            ),
            None => println!("{kind}/{} registered", body["name"].as_str().unwrap_or("?")),
        }
    }
    Ok(())
}

/// What `gantry runs start` sends.
pub(crate) struct Start<'a> {
    pub(crate) input: &'a str,
    pub(crate) key: Option<&'a str>,
    /// `KEY=VALUE` each.
    pub(crate) tags: &'a [String],
    pub(crate) wait: bool,
}

/// `KEY=VALUE` arguments as pairs.
fn tag_pairs(tags: &[String]) -> anyhow::Result<Vec<(&str, &str)>> {
    tags.iter()
        .map(|t| {
            t.split_once('=')
                .with_context(|| format!("--tag {t:?} must be KEY=VALUE"))
        })
        .collect()
}

pub(crate) async fn start(c: &ClientArgs, name: &str, s: Start<'_>) -> anyhow::Result<ExitCode> {
    let Start {
        input,
        key,
        tags,
        wait,
    } = s;
    let input: Value = serde_json::from_str(input).context("--input is not valid JSON")?;
    let mut body = json!({ "input": input });
    if !tags.is_empty() {
        let tags: serde_json::Map<String, Value> = tag_pairs(tags)?
            .into_iter()
            .map(|(k, v)| (k.to_owned(), json!(v)))
            .collect();
        body["tags"] = Value::Object(tags);
    }
    let mut rb = request(
        c,
        reqwest::Method::POST,
        &format!("/v1/workflows/{name}/runs"),
    )
    .json(&body);
    if let Some(k) = key {
        rb = rb.header("Idempotency-Key", k);
    }
    let (_, body) = send(rb).await?;
    let id = body["id"]
        .as_str()
        .context("the api returned no run id")?
        .to_owned();
    println!("run {id} started");
    if !wait {
        return Ok(ExitCode::SUCCESS);
    }
    crate::wait::follow(c, &id).await
}

/// `gantry runs cancel|retry`: one run by id, or every run a filter
/// matches (the bulk route); prints what happened.
pub(crate) async fn act(
    c: &ClientArgs,
    verb: &str,
    id: Option<&str>,
    f: &crate::cli::BulkArgs,
) -> anyhow::Result<()> {
    if let Some(id) = id {
        let (_, run) = send(
            request(c, reqwest::Method::POST, &format!("/v1/runs/{id}/{verb}")).json(&json!({})),
        )
        .await?;
        println!("run {id}: {}", run["status"].as_str().unwrap_or("?"));
        return Ok(());
    }
    let mut body = json!({});
    if let Some(w) = &f.workflow {
        body["workflow"] = json!(w);
    }
    if !f.tags.is_empty() {
        let tags: serde_json::Map<String, Value> = tag_pairs(&f.tags)?
            .into_iter()
            .map(|(k, v)| (k.to_owned(), json!(v)))
            .collect();
        body["tags"] = Value::Object(tags);
    }
    for (field, v) in [
        ("created_after", &f.created_after),
        ("created_before", &f.created_before),
    ] {
        if let Some(v) = v {
            body[field] = json!(v);
        }
    }
    let (_, answer) =
        send(request(c, reqwest::Method::POST, &format!("/v1/runs/{verb}")).json(&body)).await?;
    let more = if answer["more"] == true {
        " (more match: run it again)"
    } else {
        ""
    };
    println!("{verb}: {} runs{more}", answer["matched"]);
    Ok(())
}

/// `gantry runs rerun ID --from NODE`: start the re-run, then follow it
/// when asked.
pub(crate) async fn rerun(
    c: &ClientArgs,
    id: &str,
    from: &[String],
    input: Option<&str>,
    wait: bool,
) -> anyhow::Result<ExitCode> {
    let mut body = json!({ "from": from });
    if let Some(input) = input {
        body["input"] = serde_json::from_str(input).context("--input is not valid JSON")?;
    }
    let (_, run) =
        send(request(c, reqwest::Method::POST, &format!("/v1/runs/{id}/rerun")).json(&body))
            .await?;
    let new = run["id"]
        .as_str()
        .context("the api returned no run id")?
        .to_owned();
    println!("run {new} started (a re-run of {id})");
    if !wait {
        return Ok(ExitCode::SUCCESS);
    }
    crate::wait::follow(c, &new).await
}

/// What `gantry runs list` asks for.
pub(crate) struct ListFilter<'a> {
    pub(crate) workflow: Option<&'a str>,
    pub(crate) status: Option<&'a str>,
    /// `KEY=VALUE` each.
    pub(crate) tags: &'a [String],
    pub(crate) limit: u32,
}

/// `gantry runs list`: one line per run, newest first.
pub(crate) async fn list_runs(c: &ClientArgs, f: ListFilter<'_>) -> anyhow::Result<()> {
    let mut query: Vec<(&str, String)> = vec![("limit", f.limit.to_string())];
    query.extend(f.workflow.map(|w| ("workflow", w.to_owned())));
    query.extend(f.status.map(|s| ("status", s.to_owned())));
    for (k, v) in tag_pairs(f.tags)? {
        query.push(("tag", format!("{k}:{v}")));
    }
    let (_, body) = send(request(c, reqwest::Method::GET, "/v1/runs").query(&query)).await?;
    println!(
        "{:<36} {:<24} {:>4} {:<10} {:<32} TAGS",
        "RUN", "WORKFLOW", "V", "STATUS", "CREATED"
    );
    for r in body["runs"].as_array().into_iter().flatten() {
        let tags: Vec<String> = r["tags"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
            .collect();
        println!(
            "{:<36} {:<24} {:>4} {:<10} {:<32} {}",
            r["id"].as_str().unwrap_or("?"),
            r["workflow"].as_str().unwrap_or("?"),
            r["version"],
            r["status"].as_str().unwrap_or("?"),
            r["created_at"].as_str().unwrap_or("?"),
            tags.join(",")
        );
    }
    Ok(())
}

pub(crate) async fn show(c: &ClientArgs, id: &str, json: bool) -> anyhow::Result<()> {
    let (_, run) = send(request(c, reqwest::Method::GET, &format!("/v1/runs/{id}"))).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&run)?);
        return Ok(());
    }
    let (_, children) = send(request(
        c,
        reqwest::Method::GET,
        &format!("/v1/runs?parent={id}&limit=500"),
    ))
    .await?;
    print!("{}", crate::wait::describe(&run, &children));
    Ok(())
}

/// Approve or reject a node waiting for approval.
pub(crate) async fn decide(
    c: &ClientArgs,
    id: &str,
    node: &str,
    index: Option<u32>,
    verb: &str,
) -> anyhow::Result<()> {
    let (path, what) = match index {
        None => (
            format!("/v1/runs/{id}/nodes/{node}/{verb}"),
            node.to_owned(),
        ),
        Some(i) => (
            format!("/v1/runs/{id}/nodes/{node}/{verb}?index={i}"),
            format!("{node}[{i}]"),
        ),
    };
    let (_, body) =
        send(request(c, reqwest::Method::POST, &path).json(&serde_json::json!({}))).await?;
    println!(
        "run {id}: {what} {verb}d; run {}",
        body["status"].as_str().unwrap_or("?")
    );
    Ok(())
}

pub(crate) async fn queues(c: &ClientArgs) -> anyhow::Result<()> {
    let (_, body) = send(request(c, reqwest::Method::GET, "/v1/queues")).await?;
    println!(
        "{:<24} {:>8} {:>8} {:>10} {:>6}",
        "QUEUE", "READY", "DELAYED", "IN_FLIGHT", "DEAD"
    );
    for q in body["queues"].as_array().into_iter().flatten() {
        println!(
            "{:<24} {:>8} {:>8} {:>10} {:>6}",
            q["name"].as_str().unwrap_or("?"),
            q["ready"],
            q["delayed"],
            q["in_flight"],
            q["dead"]
        );
    }
    Ok(())
}

/// `gantry schedules`: every cron trigger, one line each.
pub(crate) async fn schedules(c: &ClientArgs) -> anyhow::Result<()> {
    let (_, body) = send(request(c, reqwest::Method::GET, "/v1/schedules")).await?;
    println!(
        "{:<24} {:>3} {:<20} {:<16} {:<22} {:<22} {:<36} PAUSED",
        "WORKFLOW", "#", "CRON", "TIMEZONE", "NEXT_TICK", "LAST_TICK", "LAST_RUN"
    );
    let text = |v: &Value| v.as_str().unwrap_or("-").to_owned();
    for s in body["schedules"].as_array().into_iter().flatten() {
        println!(
            "{:<24} {:>3} {:<20} {:<16} {:<22} {:<22} {:<36} {}",
            text(&s["workflow"]),
            s["index"],
            text(&s["cron"]),
            text(&s["timezone"]),
            text(&s["next_tick"]),
            text(&s["last_tick"]),
            text(&s["last_run"]),
            if s["paused"] == true { "yes" } else { "no" }
        );
    }
    Ok(())
}

/// `gantry workflows pause|resume NAME`.
pub(crate) async fn set_paused(c: &ClientArgs, name: &str, paused: bool) -> anyhow::Result<()> {
    let verb = if paused { "pause" } else { "resume" };
    if !gantry_dag::is_valid_name(name) {
        anyhow::bail!("workflow name {name:?} must match ^[a-z0-9][a-z0-9_-]{{0,62}}$");
    }
    let path = format!("/v1/workflows/{name}/{verb}");
    send(request(c, reqwest::Method::POST, &path).json(&json!({}))).await?;
    println!(
        "workflow {name}: triggers {}",
        if paused { "paused" } else { "resumed" }
    );
    Ok(())
}

/// `gantry events send`: POST the event, print the answer.
pub(crate) async fn send_event(
    c: &ClientArgs,
    name: &str,
    key: &str,
    data: &str,
    id: Option<&str>,
) -> anyhow::Result<()> {
    let data: Value = serde_json::from_str(data).context("--data must be JSON")?;
    let mut body = json!({"name": name, "key": key, "data": data});
    if let Some(id) = id {
        body["id"] = json!(id);
    }
    let (status, answer) =
        send(request(c, reqwest::Method::POST, "/v1/events").json(&body)).await?;
    let again = if status == 200 { " (sent before)" } else { "" };
    println!(
        "event {}{again}: {} waits matched, {} runs started",
        answer["id"].as_str().unwrap_or(""),
        answer["waits_matched"],
        answer["runs_started"]
    );
    Ok(())
}
