//! Property tests of validation on random graphs with arbitrary edges:
//! accepted exactly when acyclic, every reported cycle is a real cycle, and
//! the topological order respects every edge.

use gantry_dag::{ValidatedDag, WorkflowDef, DEFAULT_MAX_NODES};
use proptest::prelude::*;
use serde_json::json;

/// Acyclic by repeatedly removing nodes without remaining parents.
fn is_acyclic(n: usize, deps: &[Vec<usize>]) -> bool {
    let mut removed = vec![false; n];
    for _ in 0..n {
        let Some(free) =
            (0..n).find(|&i| !removed[i] && deps[i].iter().all(|&p| removed[p] || p == i))
        else {
            return false;
        };
        removed[free] = true;
    }
    true
}

proptest! {
    #[test]
    fn accepts_exactly_the_acyclic_graphs(
        deps in (1usize..12).prop_flat_map(|n| proptest::collection::vec(proptest::collection::vec(0..n, 0..3), n))
    ) {
        let n = deps.len();
        // Self-loops are their own problem; keep them out of this property.
        let deps: Vec<Vec<usize>> = deps.iter().enumerate().map(|(i, d)| d.iter().copied().filter(|&p| p != i).collect()).collect();
        let nodes: Vec<_> = deps.iter().enumerate().map(|(i, d)| {
            let names: Vec<String> = d.iter().map(|p| format!("n{p}")).collect();
            json!({"id": format!("n{i}"), "agent": "a", "depends_on": names})
        }).collect();
        let def: WorkflowDef = serde_json::from_value(json!({"name": "wf", "nodes": nodes})).unwrap();
        match ValidatedDag::new(def, &|_| true, DEFAULT_MAX_NODES) {
            Ok(dag) => {
                prop_assert!(is_acyclic(n, &deps));
                let mut pos = vec![0; n];
                for (k, &v) in dag.topo().iter().enumerate() {
                    pos[v as usize] = k;
                }
                prop_assert_eq!(dag.topo().len(), n);
                for (i, d) in deps.iter().enumerate() {
                    for &p in d {
                        prop_assert!(pos[p] < pos[i], "n{} must come before n{}", p, i);
                    }
                }
            }
            Err(problems) => {
                prop_assert!(!is_acyclic(n, &deps));
                prop_assert!(problems.iter().all(|p| p.code == "cycle"), "{:?}", problems);
                for p in &problems {
                    // "cycle a -> b -> a": each hop is an edge parent -> child.
                    let ids: Vec<usize> = p.message.trim_start_matches("cycle ").split(" -> ")
                        .map(|s| s.trim_start_matches('n').parse().unwrap()).collect();
                    prop_assert!(ids.len() >= 3 && ids.first() == ids.last(), "{}", p.message);
                    for hop in ids.windows(2) {
                        prop_assert!(deps[hop[1]].contains(&hop[0]), "{} is not a cycle", p.message);
                    }
                }
            }
        }
    }
}
