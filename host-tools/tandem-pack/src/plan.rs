//! Offline arena planning: tensor lifetimes, in-place reuse, and greedy placement, with the
//! live-tensor lower bound the result is measured against.

use super::ir::Graph;

/// Where every tensor lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Arena byte offset of each tensor (tensors written in place share one).
    pub offsets: Vec<u32>,
    /// Arena bytes needed.
    pub arena: usize,
    /// The most bytes alive at once (after in-place merging): no placement can do better.
    pub lower_bound: usize,
    /// Tensors written in place over an input.
    pub in_place: usize,
}

/// A block of arena bytes shared by tensors written in place over each other.
#[derive(Debug, Clone)]
struct Buffer {
    size: usize,
    def: usize,
    last: usize,
}

fn find(parent: &mut [usize], mut i: usize) -> usize {
    while parent[i] != i {
        parent[i] = parent[parent[i]];
        i = parent[i];
    }
    i
}

/// Plan the arena for `graph` with `elem` bytes per element.
pub fn plan(graph: &Graph, elem: usize) -> Plan {
    let n = graph.tensors.len();
    let life = graph.lifetimes();
    let bytes: Vec<usize> = graph.tensors.iter().map(|t| t.len() * elem).collect();
    let mut parent: Vec<usize> = (0..n).collect();
    let mut in_place = 0;
    for (i, op) in graph.ops.iter().enumerate() {
        if !op.kind.in_place() {
            continue;
        }
        let step = i + 1;
        let candidate = op
            .inputs
            .iter()
            .copied()
            .find(|&t| life[t].is_some_and(|(_, last)| last == step) && bytes[t] == bytes[op.output]);
        if let Some(t) = candidate {
            let root = find(&mut parent, t);
            parent[op.output] = root;
            in_place += 1;
        }
    }
    let mut buffers: Vec<Option<Buffer>> = vec![None; n];
    for t in 0..n {
        let Some((def, last)) = life[t] else { continue };
        let root = find(&mut parent, t);
        let b = buffers[root].get_or_insert(Buffer { size: 0, def, last });
        b.size = b.size.max(bytes[t]);
        b.def = b.def.min(def);
        b.last = b.last.max(last);
    }
    let live: Vec<(usize, Buffer)> =
        buffers.into_iter().enumerate().filter_map(|(i, b)| Some((i, b?))).collect();
    let steps = graph.ops.len() + 1;
    let lower_bound = (0..=steps)
        .map(|s| live.iter().filter(|(_, b)| b.def <= s && s <= b.last).map(|(_, b)| b.size).sum::<usize>())
        .max()
        .unwrap_or(0);

    // Greedy placement under a few orders; keep the smallest arena.
    type SortKey = fn(&Buffer) -> (i64, i64);
    let orders: [SortKey; 3] = [
        |b| (-(b.size as i64), b.def as i64),
        |b| (b.def as i64, -(b.size as i64)),
        |b| (-((b.last - b.def) as i64), -(b.size as i64)),
    ];
    let mut best: Option<(usize, Vec<usize>)> = None;
    for key in orders {
        let mut order: Vec<usize> = (0..live.len()).collect();
        order.sort_by_key(|&i| key(&live[i].1));
        let mut offset = vec![0usize; live.len()];
        let mut placed: Vec<usize> = Vec::new();
        let mut arena = 0;
        for &i in &order {
            let b = &live[i].1;
            let size = b.size.next_multiple_of(tandem_micro::format::ALIGN);
            let mut conflicts: Vec<(usize, usize)> = placed
                .iter()
                .filter(|&&j| live[j].1.def <= b.last && b.def <= live[j].1.last)
                .map(|&j| {
                    (offset[j], offset[j] + live[j].1.size.next_multiple_of(tandem_micro::format::ALIGN))
                })
                .collect();
            conflicts.sort_unstable();
            let mut at = 0;
            for (start, end) in conflicts {
                if at + size <= start {
                    break;
                }
                at = at.max(end);
            }
            offset[i] = at;
            arena = arena.max(at + size);
            placed.push(i);
        }
        if best.as_ref().is_none_or(|(a, _)| arena < *a) {
            best = Some((arena, offset));
        }
    }
    let (arena, offset) = best.unwrap_or_default();
    let mut offsets = vec![0u32; n];
    for (t, slot) in offsets.iter_mut().enumerate() {
        let root = find(&mut parent, t);
        if let Some(k) = live.iter().position(|(i, _)| *i == root) {
            *slot = offset[k] as u32;
        }
    }
    Plan { offsets, arena, lower_bound, in_place }
}
