//! The token-level diff view's state: which call is compared with which, where the reader is.
//!
//! Skeleton: the diff itself is being built (issue 3).

use crate::analysis::ItemSnapshot;

use super::keys::Command;

/// What the selected call is compared against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Base {
    #[default]
    Modal,
    /// A call index of the item shown.
    Call(u32),
}

#[derive(Debug, Default)]
pub struct DiffState {
    pub base: Base,
}

impl DiffState {
    /// Applies a key in the diff view to the item shown.
    pub fn apply(&mut self, _command: Command, _item: Option<&ItemSnapshot>) {}

    /// Brings cached diffs up to date with a new snapshot of the item shown.
    pub fn refresh(&mut self, _item: Option<&ItemSnapshot>) {}

    /// Shows the first call of cluster `id` (the `d` key from the clusters list).
    pub fn focus_cluster(&mut self, _item: &ItemSnapshot, _id: u32) {}
}
