//! Instances of `for_each` nodes (SPEC 2.1): each item of a map node runs
//! as an instance, and an instance is addressed like a node, by a *slot*:
//! one `NodeIdx` that packs the node and the item's index. Nodes keep their
//! definition index (below [`FIRST_SLOT`]); the instances of node `n` take
//! the contiguous slots from `FIRST_SLOT + n * 2^14`, in item order. So every
//! path that claims, leases, fences, records and delivers a node serves an
//! instance unchanged, and a node's instances are one range of keys.

use crate::template::TemplateRef;
use crate::NodeIdx;

/// Most items a `for_each` may have (`max_items` is at most this).
pub const MAX_ITEMS: u32 = 10_000;
/// `max_items` when a node does not set it.
pub const DEFAULT_MAX_ITEMS: u32 = 1_000;
/// Most nodes a workflow may have whatever `GANTRY_MAX_NODES` says: slots
/// of instances start above every node index and must fit an `int4`.
pub const MAX_NODES: usize = 100_000;

const ITEM_BITS: u32 = 14;
/// The first slot of an instance; every node index is below it.
pub const FIRST_SLOT: NodeIdx = 1 << 17;

const _: () = assert!(MAX_ITEMS < 1 << ITEM_BITS);
const _: () = assert!((MAX_NODES as u32) < FIRST_SLOT);
const _: () = assert!(FIRST_SLOT as u64 + ((MAX_NODES as u64) << ITEM_BITS) <= i32::MAX as u64 + 1);

/// What a [`NodeIdx`] addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Slot {
    /// A node of the definition.
    Node(NodeIdx),
    /// Item `item` (0-based) of the `for_each` node `node`.
    Instance { node: NodeIdx, item: u32 },
}

impl Slot {
    /// Unpack an index.
    pub fn of(idx: NodeIdx) -> Self {
        if idx < FIRST_SLOT {
            Self::Node(idx)
        } else {
            let off = idx - FIRST_SLOT;
            Self::Instance {
                node: off >> ITEM_BITS,
                item: off & ((1 << ITEM_BITS) - 1),
            }
        }
    }

    /// The node this slot belongs to (itself for a node).
    pub fn node(self) -> NodeIdx {
        match self {
            Self::Node(n) | Self::Instance { node: n, .. } => n,
        }
    }

    /// The item index of an instance.
    pub fn item(self) -> Option<u32> {
        match self {
            Self::Node(_) => None,
            Self::Instance { item, .. } => Some(item),
        }
    }
}

/// The slot of item `item` of node `node`.
pub fn instance_slot(node: NodeIdx, item: u32) -> NodeIdx {
    debug_assert!((node as usize) < MAX_NODES && item <= MAX_ITEMS);
    FIRST_SLOT + (node << ITEM_BITS) + item
}

/// The node `idx` belongs to: itself, or an instance's node.
pub fn owner(idx: NodeIdx) -> NodeIdx {
    Slot::of(idx).node()
}

/// Whether `idx` is an instance's slot.
pub fn is_instance(idx: NodeIdx) -> bool {
    idx >= FIRST_SLOT
}

/// A node's validated `for_each`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForEach {
    /// The template, exactly one `{{...}}` (`run.input...` or an
    /// ancestor's output).
    pub template: String,
    pub source: TemplateRef,
    pub max_items: u32,
    /// Most instances queued or running at once; `None` is no bound.
    pub max_parallel: Option<u32>,
}

/// Where a map node stands: set when it expands, kept through a retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MapState {
    /// How many items (instances) it has.
    pub items: u32,
    /// Lowest item that may not have started yet.
    pub next: u32,
    /// Instances waiting for approval, queued, running or retrying: the
    /// ones `max_parallel` bounds.
    pub active: u32,
    /// Of the active instances, those waiting for approval. The node reads
    /// as `waiting_approval` while every active instance waits.
    pub parked: u32,
    /// Instances that succeeded.
    pub succeeded: u32,
    /// The first instance that failed for good: no new instance starts and
    /// the node fails once the active ones end.
    pub failed_item: Option<u32>,
}

impl MapState {
    /// Note that instance `item` failed for good: the lowest such item is
    /// the one the node's failure names.
    pub(crate) fn fail_item(&mut self, item: u32) {
        self.failed_item = Some(self.failed_item.map_or(item, |f| f.min(item)));
    }
}
