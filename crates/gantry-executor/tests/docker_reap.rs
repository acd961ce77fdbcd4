//! Orphan reaping against the real engine. Its own test binary (cargo runs
//! binaries one at a time), because a zero reap grace would otherwise reap
//! the containers of tests running alongside.

mod docker_support;

use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::RemoveContainerOptionsBuilder;
use bollard::Docker;
use docker_support::{runtime, IMAGE};
use gantry_executor::DockerConfig;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio_util::sync::CancellationToken;

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Creates a container of the test image with `labels`, started when `start`.
async fn container(
    docker: &Docker,
    labels: &[(&str, String)],
    cmd: &[&str],
    start: bool,
) -> String {
    let body = ContainerCreateBody {
        image: Some(IMAGE.to_owned()),
        cmd: Some(cmd.iter().map(|s| s.to_string()).collect()),
        labels: Some(
            labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect::<HashMap<_, _>>(),
        ),
        host_config: Some(HostConfig {
            network_mode: Some("none".to_owned()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let id = docker.create_container(None, body).await.unwrap().id;
    if start {
        docker.start_container(&id, None).await.unwrap();
    }
    id
}

async fn exists(docker: &Docker, id: &str) -> bool {
    match docker.inspect_container(id, None).await {
        Ok(_) => true,
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => false,
        Err(e) => panic!("inspect {id}: {e}"),
    }
}

async fn wait_exited(docker: &Docker, id: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let info = docker.inspect_container(id, None).await.unwrap();
        if info.state.and_then(|s| s.running) == Some(false) {
            return;
        }
        assert!(Instant::now() < deadline, "{id} did not exit");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn reap_removes_leftovers_and_spares_live_and_foreign_containers() {
    let mut cfg = DockerConfig::new("reaper");
    cfg.reap_grace = Duration::ZERO;
    let rt = Arc::new(runtime(cfg).await);
    let docker = rt.client().clone();
    let managed = |deadline: u64| {
        vec![
            ("gantry.managed", "true".to_owned()),
            ("gantry.run", "reap-test".to_owned()),
            ("gantry.worker", "crashed-worker".to_owned()),
            ("gantry.deadline", deadline.to_string()),
        ]
    };
    let exited = container(&docker, &managed(now() + 3600), &["true"], true).await;
    wait_exited(&docker, &exited).await;
    let created = container(&docker, &managed(now() + 3600), &["true"], false).await;
    let overdue = container(&docker, &managed(now() - 1), &["sleep", "60"], true).await;
    let live = container(&docker, &managed(now() + 3600), &["sleep", "60"], true).await;
    let foreign = container(&docker, &[("other", "x".to_owned())], &["true"], true).await;
    wait_exited(&docker, &foreign).await;

    let removed = rt.reap_orphans().await.unwrap();
    assert!(removed >= 3, "removed {removed}");
    for id in [&exited, &created, &overdue] {
        assert!(!exists(&docker, id).await, "{id} should have been reaped");
    }
    assert!(
        exists(&docker, &live).await,
        "a running container within its deadline stays"
    );
    assert!(
        exists(&docker, &foreign).await,
        "unmanaged containers are not ours"
    );

    // The loop reaps at once on start, then stops on shutdown.
    let again = container(&docker, &managed(now() + 3600), &["true"], false).await;
    let stop = CancellationToken::new();
    let looping = tokio::spawn(Arc::clone(&rt).reap_loop(Duration::from_secs(3600), stop.clone()));
    let deadline = Instant::now() + Duration::from_secs(10);
    while exists(&docker, &again).await {
        assert!(Instant::now() < deadline, "reap_loop did not reap");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(5), looping)
        .await
        .unwrap()
        .unwrap();

    let force = RemoveContainerOptionsBuilder::new().force(true).build();
    for id in [&live, &foreign] {
        docker
            .remove_container(id, Some(force.clone()))
            .await
            .unwrap();
    }
}
