//! Where the cookie keys come from. The shield reads its pinned maps; the lab's benchmark
//! programs read maps of their own (the tests load them beside a running shield).

use syncookie_common::maps::Key;

pub trait Keys {
    /// The key in `slot` (`syncookie_common::maps::KEY_*`), if the map has one.
    fn key(&self, slot: u32) -> Option<Key>;
    /// The current key epoch; its key is in slot `epoch & 1`.
    fn current_epoch(&self) -> u64;
}
