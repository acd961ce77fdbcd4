//! The DAG as an SVG graph: nodes placed in columns by depth (the longest
//! path from a root, so every edge points right), ordered within a column
//! by the mean row of their parents to keep edges short, edges as curves.
//! The layout is pure (ids and parents in, coordinates out) and tested.

use maud::{html, Markup};

/// Node box size and gaps, in SVG units (pixels).
const W: i64 = 168;
const H: i64 = 46;
const GAP_X: i64 = 56;
const GAP_Y: i64 = 18;
const PAD: i64 = 12;
/// Larger graphs are not drawn (the node list below still shows them).
pub(crate) const MAX_DRAWN: usize = 600;

/// Where each node goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Layout {
    /// `(column, row)` of each node, by input index.
    pub(crate) cells: Vec<(usize, usize)>,
    pub(crate) columns: usize,
    pub(crate) rows: usize,
}

/// Lay out nodes `0..parents.len()`; `parents[i]` are the indices node `i`
/// depends on. A cycle (never in a validated DAG) puts its nodes last.
pub(crate) fn layout(parents: &[Vec<usize>]) -> Layout {
    let n = parents.len();
    let mut children = vec![Vec::new(); n];
    let mut waiting: Vec<usize> = vec![0; n];
    for (i, ps) in parents.iter().enumerate() {
        for &p in ps.iter().filter(|&&p| p < n) {
            children[p].push(i);
            waiting[i] += 1;
        }
    }
    // Kahn's order; depth = 1 + the deepest parent.
    let mut depth = vec![0usize; n];
    let mut queue: std::collections::VecDeque<usize> =
        (0..n).filter(|&i| waiting[i] == 0).collect();
    let mut seen = 0;
    while let Some(i) = queue.pop_front() {
        seen += 1;
        for &c in &children[i] {
            depth[c] = depth[c].max(depth[i] + 1);
            waiting[c] -= 1;
            if waiting[c] == 0 {
                queue.push_back(c);
            }
        }
    }
    if seen < n {
        let last = depth.iter().copied().max().unwrap_or(0) + 1;
        for (i, w) in waiting.iter().enumerate() {
            if *w > 0 {
                depth[i] = last;
            }
        }
    }
    let columns = depth.iter().copied().max().map_or(0, |d| d + 1);
    let mut by_column: Vec<Vec<usize>> = vec![Vec::new(); columns];
    for (i, &d) in depth.iter().enumerate() {
        by_column[d].push(i);
    }
    // Order each column by the mean row of the node's parents (barycenter),
    // ties by declaration order.
    let mut row = vec![0usize; n];
    for col in &mut by_column {
        let key = |i: usize| -> f64 {
            let ps: Vec<usize> = parents[i].iter().copied().filter(|&p| p < n).collect();
            if ps.is_empty() {
                i as f64
            } else {
                ps.iter().map(|&p| row[p] as f64).sum::<f64>() / ps.len() as f64
            }
        };
        let mut keyed: Vec<(f64, usize)> = col.iter().map(|&i| (key(i), i)).collect();
        keyed.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        *col = keyed.into_iter().map(|(_, i)| i).collect();
        for (r, &i) in col.iter().enumerate() {
            row[i] = r;
        }
    }
    let rows = by_column.iter().map(Vec::len).max().unwrap_or(0);
    Layout {
        cells: (0..n).map(|i| (depth[i], row[i])).collect(),
        columns,
        rows,
    }
}

fn origin((col, row): (usize, usize)) -> (i64, i64) {
    (
        PAD + col as i64 * (W + GAP_X),
        PAD + row as i64 * (H + GAP_Y),
    )
}

/// One node to draw.
pub(crate) struct DrawNode<'a> {
    pub(crate) id: &'a str,
    pub(crate) status: &'a str,
    pub(crate) parents: Vec<usize>,
    /// A `for_each` node's instances, e.g. `3/10 succeeded`.
    pub(crate) instances: Option<String>,
}

/// The graph as inline SVG: `g.node[data-node][data-status]` per node with
/// a `text.node-status`, `path.edge` per dependency.
pub(crate) fn svg(nodes: &[DrawNode<'_>]) -> Markup {
    let parents: Vec<Vec<usize>> = nodes.iter().map(|n| n.parents.clone()).collect();
    let l = layout(&parents);
    let width = 2 * PAD + l.columns as i64 * (W + GAP_X) - GAP_X.min(l.columns as i64 * GAP_X);
    let height = 2 * PAD + l.rows as i64 * (H + GAP_Y) - GAP_Y.min(l.rows as i64 * GAP_Y);
    let (width, height) = (width.max(W), height.max(H));
    html! {
        svg #dag .dag xmlns="http://www.w3.org/2000/svg" role="img"
            aria-label="workflow graph" width=(width) height=(height)
            viewBox={ "0 0 " (width) " " (height) } {
            defs {
                marker #arrow viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6"
                    markerHeight="6" orient="auto-start-reverse" {
                    path d="M 0 0 L 10 5 L 0 10 z" {}
                }
            }
            g.edges {
                @for (i, n) in nodes.iter().enumerate() {
                    @for &p in n.parents.iter().filter(|&&p| p < nodes.len()) {
                        @let (x1, y1) = origin(l.cells[p]);
                        @let (x2, y2) = origin(l.cells[i]);
                        @let (sx, sy, ex, ey) = (x1 + W, y1 + H / 2, x2, y2 + H / 2);
                        @let mid = (sx + ex) / 2;
                        path.edge data-from=(nodes[p].id) data-to=(n.id) marker-end="url(#arrow)"
                            d={ "M " (sx) " " (sy) " C " (mid) " " (sy) ", " (mid) " " (ey) ", " (ex) " " (ey) } {}
                    }
                }
            }
            @for (i, n) in nodes.iter().enumerate() {
                @let (x, y) = origin(l.cells[i]);
                g class={ "node status-" (n.status) } data-node=(n.id) data-status=(n.status)
                    transform={ "translate(" (x) "," (y) ")" } {
                    title { (n.id) ": " (n.status) }
                    a href={ "#node-" (n.id) } {
                        rect width=(W) height=(H) rx="7" {}
                        text.node-id x="10" y="19" { (short(n.id, 22)) }
                        text.node-status x="10" y="36" { (n.status) }
                        @if let Some(i) = &n.instances {
                            text.node-instances x="10" y="50" { (short(i, 24)) }
                        }
                    }
                }
            }
        }
    }
}

fn short(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(max - 1).collect();
        t.push('…');
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_follow_the_longest_path_and_edges_point_right() {
        // a -> b -> d, a -> c -> d, a -> d
        let parents = vec![vec![], vec![0], vec![0], vec![1, 2, 0]];
        let l = layout(&parents);
        assert_eq!(l.columns, 3);
        assert_eq!(l.rows, 2);
        assert_eq!(l.cells[0], (0, 0));
        assert_eq!(l.cells[3].0, 2, "d sits after its deepest parent");
        for (i, ps) in parents.iter().enumerate() {
            for &p in ps {
                assert!(l.cells[p].0 < l.cells[i].0, "edge {p}->{i} points right");
            }
        }
        let mut cells = l.cells.clone();
        cells.sort_unstable();
        cells.dedup();
        assert_eq!(cells.len(), 4, "no two nodes share a cell");
    }

    #[test]
    fn children_are_ordered_by_their_parents_rows() {
        // Roots r0, r1; x depends on r1, y on r0: y goes above x.
        let parents = vec![vec![], vec![], vec![1], vec![0]];
        let l = layout(&parents);
        assert_eq!(l.cells[3], (1, 0));
        assert_eq!(l.cells[2], (1, 1));
    }

    #[test]
    fn a_cycle_or_bad_index_does_not_panic() {
        let l = layout(&[vec![1], vec![0], vec![7]]);
        assert_eq!(l.cells.len(), 3);
        assert_eq!(layout(&[]).columns, 0);
    }

    #[test]
    fn svg_escapes_and_marks_each_node() {
        let nodes = [
            DrawNode {
                id: "a",
                status: "succeeded",
                parents: vec![],
                instances: Some("2/3 succeeded".into()),
            },
            DrawNode {
                id: "b<x>",
                status: "running",
                parents: vec![0],
                instances: None,
            },
        ];
        let s = svg(&nodes).into_string();
        assert!(s.contains(r#"<text class="node-instances" x="10" y="50">2/3 succeeded</text>"#));
        assert!(
            s.contains(r#"class="node status-succeeded" data-node="a" data-status="succeeded""#)
        );
        assert!(s.contains("b&lt;x&gt;"));
        assert!(!s.contains("b<x>"));
        assert_eq!(s.matches("class=\"edge\"").count(), 1);
    }
}
