//! `gantry bench map` (SPEC section 7): one `for_each` node over N items of
//! builtin `noop`, then a join that reads the array. `items_per_s` is N
//! over the run's stored creation-to-finish time.

use crate::bench::{node, r3, register, run_with};
use gantry_engine::Engine;
use serde_json::{json, Value};

pub(crate) async fn run(engine: &Engine, n: usize, concurrency: usize) -> anyhow::Result<Value> {
    let n = n.clamp(1, gantry_dag::MAX_ITEMS as usize);
    let nodes = || {
        let mut map = node("map".into(), vec![]);
        map.for_each = Some("{{run.input.items}}".into());
        map.max_items = Some(gantry_dag::MAX_ITEMS.into());
        let mut join = node("join".into(), vec!["map".into()]);
        join.input = json!({"all": "{{map.output}}"});
        vec![map, join]
    };
    let items = |k: usize| json!({ "items": (0..k).collect::<Vec<usize>>() });
    let wf = register(engine, "bench-map", nodes()).await?;
    // A small map first, so that connections and caches are warm.
    run_with(engine, &wf, &items(50)).await?;
    let (_, wall) = run_with(engine, &wf, &items(n)).await?;
    Ok(json!({
        "scenario": "map",
        "items": n,
        "items_per_s": r3(n as f64 / wall),
        "wall_s": r3(wall),
        "durable": true,
        "concurrency": concurrency,
    }))
}
