//! Iterative graph algorithms used by validation: Tarjan's strongly connected
//! components, a cycle path inside a component, Kahn's topological order and
//! ancestor queries. None of them recurse, so 5,000+ node chains are safe.

use crate::NodeIdx;

const UNVISITED: u32 = u32::MAX;

/// Strongly connected components of the graph given by `children` (edges
/// parent -> child), in Tarjan's emission order: reverse topological order
/// of the condensation (sinks first).
pub(crate) fn tarjan(children: &[Vec<NodeIdx>]) -> Vec<Vec<NodeIdx>> {
    let n = children.len();
    let mut index = vec![UNVISITED; n];
    let mut low = vec![0u32; n];
    let mut on_stack = vec![false; n];
    let mut stack: Vec<NodeIdx> = Vec::new();
    let mut call: Vec<(NodeIdx, usize)> = Vec::new();
    let mut next_index = 0u32;
    let mut sccs = Vec::new();

    for s in 0..n {
        if index[s] != UNVISITED {
            continue;
        }
        index[s] = next_index;
        low[s] = next_index;
        next_index += 1;
        stack.push(s as NodeIdx);
        on_stack[s] = true;
        call.push((s as NodeIdx, 0));
        while let Some(top) = call.last_mut() {
            let v = top.0 as usize;
            if let Some(&w) = children[v].get(top.1) {
                top.1 += 1;
                let w = w as usize;
                if index[w] == UNVISITED {
                    index[w] = next_index;
                    low[w] = next_index;
                    next_index += 1;
                    stack.push(w as NodeIdx);
                    on_stack[w] = true;
                    call.push((w as NodeIdx, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
                continue;
            }
            call.pop();
            if low[v] == index[v] {
                let mut scc = Vec::new();
                while let Some(w) = stack.pop() {
                    on_stack[w as usize] = false;
                    scc.push(w);
                    if w as usize == v {
                        break;
                    }
                }
                scc.sort_unstable();
                sccs.push(scc);
            }
            if let Some(&(p, _)) = call.last() {
                let p = p as usize;
                low[p] = low[p].min(low[v]);
            }
        }
    }
    sccs
}

/// A cycle through the smallest node of `scc` (a component with more than one
/// node), following `children`: `[a, b, c]` means a -> b -> c -> a.
pub(crate) fn cycle_in(
    scc: &[NodeIdx],
    children: &[Vec<NodeIdx>],
    member: &[bool],
) -> Vec<NodeIdx> {
    let Some(&start) = scc.iter().min() else {
        return Vec::new();
    };
    // Breadth-first search from `start` inside the component, back to it.
    let mut prev: std::collections::HashMap<NodeIdx, NodeIdx> = std::collections::HashMap::new();
    let mut queue = std::collections::VecDeque::from([start]);
    while let Some(u) = queue.pop_front() {
        for &w in &children[u as usize] {
            if !member[w as usize] {
                continue;
            }
            if w == start {
                let mut path = vec![u];
                let mut cur = u;
                while cur != start {
                    match prev.get(&cur) {
                        Some(&p) => {
                            path.push(p);
                            cur = p;
                        }
                        None => break,
                    }
                }
                path.reverse();
                return path;
            }
            if w != start && !prev.contains_key(&w) {
                prev.insert(w, u);
                queue.push_back(w);
            }
        }
    }
    // Unreachable for a real component; fall back to listing its members.
    scc.to_vec()
}

/// Kahn's topological order: roots in definition order, then nodes as they
/// become free. Complete only for an acyclic graph.
pub(crate) fn kahn(parents: &[Vec<NodeIdx>], children: &[Vec<NodeIdx>]) -> Vec<NodeIdx> {
    let mut indegree: Vec<usize> = parents.iter().map(Vec::len).collect();
    let mut order: Vec<NodeIdx> = (0..parents.len())
        .filter(|&i| indegree[i] == 0)
        .map(|i| i as NodeIdx)
        .collect();
    let mut head = 0;
    while let Some(&u) = order.get(head) {
        head += 1;
        for &c in &children[u as usize] {
            let d = &mut indegree[c as usize];
            *d -= 1;
            if *d == 0 {
                order.push(c);
            }
        }
    }
    order
}

/// Answers "is `a` a proper ancestor of `b`" for a fixed set of candidate
/// ancestors (`targets`), with one bitset per strongly connected component.
/// Memory is components x targets bits; time is edges x targets / 64.
pub(crate) struct Ancestry {
    scc_of: Vec<u32>,
    bit_of: Vec<u32>,
    words: usize,
    bits: Vec<u64>,
}

impl Ancestry {
    /// `sccs` in Tarjan's emission order (sinks first).
    pub(crate) fn new(
        parents: &[Vec<NodeIdx>],
        sccs: &[Vec<NodeIdx>],
        targets: &[NodeIdx],
    ) -> Self {
        let n = parents.len();
        let mut scc_of = vec![0u32; n];
        for (k, scc) in sccs.iter().enumerate() {
            for &v in scc {
                scc_of[v as usize] = k as u32;
            }
        }
        let mut bit_of = vec![UNVISITED; n];
        for (b, &t) in targets.iter().enumerate() {
            bit_of[t as usize] = b as u32;
        }
        let words = targets.len().div_ceil(64);
        let mut bits = vec![0u64; sccs.len() * words];
        if words > 0 {
            // Sources first, so every parent component is complete when read.
            for k in (0..sccs.len()).rev() {
                let mut acc = vec![0u64; words];
                let cyclic = sccs[k].len() > 1;
                for &v in &sccs[k] {
                    if cyclic {
                        set(&mut acc, bit_of[v as usize]);
                    }
                    for &p in &parents[v as usize] {
                        let pk = scc_of[p as usize] as usize;
                        if pk == k {
                            continue;
                        }
                        set(&mut acc, bit_of[p as usize]);
                        for (a, b) in acc.iter_mut().zip(&bits[pk * words..(pk + 1) * words]) {
                            *a |= *b;
                        }
                    }
                }
                bits[k * words..(k + 1) * words].copy_from_slice(&acc);
            }
        }
        Self {
            scc_of,
            bit_of,
            words,
            bits,
        }
    }

    /// Whether `a` (one of the targets) is a proper ancestor of `b`.
    pub(crate) fn is_ancestor(&self, a: NodeIdx, b: NodeIdx) -> bool {
        if a == b {
            return false;
        }
        let bit = self.bit_of[a as usize];
        if bit == UNVISITED {
            return false;
        }
        let k = self.scc_of[b as usize] as usize;
        let word = self.bits[k * self.words + (bit / 64) as usize];
        word & (1u64 << (bit % 64)) != 0
    }
}

fn set(acc: &mut [u64], bit: u32) {
    if bit != UNVISITED {
        acc[(bit / 64) as usize] |= 1u64 << (bit % 64);
    }
}
