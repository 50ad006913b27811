//! The cache's bookkeeping: which objects it holds, their sizes and their order of use, and
//! which to evict to make room. Pure data: the caller removes the evicted files.

use std::collections::{BTreeMap, HashMap};

use crate::names::Sha256Hex;

/// A cached object, named by its content's SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Object {
    Blob(Sha256Hex),
    Manifest(Sha256Hex),
}

/// What the index knows of one object.
#[derive(Debug, Clone, Copy)]
struct Entry {
    size: u64,
    stamp: u64,
    /// The fast checksum of content this process checked against its digest.
    check: Option<u128>,
}

/// Sizes, checksums and least-recently-used order of the cached objects, within a byte budget
/// that also counts space set aside for downloads in progress.
#[derive(Debug)]
pub(crate) struct Index {
    max: u64,
    used: u64,
    reserved: u64,
    entries: HashMap<Object, Entry>,
    order: BTreeMap<u64, Object>,
    clock: u64,
}

impl Index {
    pub(crate) fn new(max: u64) -> Index {
        Index {
            max,
            used: 0,
            reserved: 0,
            entries: HashMap::new(),
            order: BTreeMap::new(),
            clock: 0,
        }
    }

    /// The size of `object`, marking it the most recently used.
    pub(crate) fn touch(&mut self, object: &Object) -> Option<u64> {
        let old = self.entries.get(object)?.stamp;
        self.order.remove(&old);
        let stamp = self.tick();
        self.order.insert(stamp, object.clone());
        let entry = self.entries.get_mut(object)?;
        entry.stamp = stamp;
        Some(entry.size)
    }

    /// The fast checksum recorded for `object`, if this process checked it.
    pub(crate) fn check(&self, object: &Object) -> Option<u128> {
        self.entries.get(object)?.check
    }

    /// Records the fast checksum of `object`'s checked content.
    pub(crate) fn set_check(&mut self, object: &Object, check: u128) {
        if let Some(entry) = self.entries.get_mut(object) {
            entry.check = Some(check);
        }
    }

    pub(crate) fn contains(&self, object: &Object) -> bool {
        self.entries.contains_key(object)
    }

    /// Adds `object` as the most recently used and returns what was evicted to make room;
    /// `None` (nothing evicted, nothing added) when it cannot fit even in an empty cache.
    pub(crate) fn insert(
        &mut self,
        object: Object,
        size: u64,
        check: Option<u128>,
    ) -> Option<Vec<Object>> {
        self.remove(&object);
        let evicted = self.make_room(size)?;
        self.used += size;
        let stamp = self.tick();
        self.order.insert(stamp, object.clone());
        self.entries.insert(object, Entry { size, stamp, check });
        Some(evicted)
    }

    /// Forgets `object`; whether it was there.
    pub(crate) fn remove(&mut self, object: &Object) -> bool {
        match self.entries.remove(object) {
            Some(entry) => {
                self.order.remove(&entry.stamp);
                self.used -= entry.size;
                true
            }
            None => false,
        }
    }

    /// Sets `size` bytes aside for a download, evicting as needed; `None` when it cannot fit.
    pub(crate) fn reserve(&mut self, size: u64) -> Option<Vec<Object>> {
        let evicted = self.make_room(size)?;
        self.reserved += size;
        Some(evicted)
    }

    /// Gives back space set aside by [`Index::reserve`].
    pub(crate) fn release(&mut self, size: u64) {
        self.reserved = self.reserved.saturating_sub(size);
    }

    /// Bytes held by cached objects.
    pub(crate) fn used(&self) -> u64 {
        self.used
    }

    fn make_room(&mut self, size: u64) -> Option<Vec<Object>> {
        if size.saturating_add(self.reserved) > self.max {
            return None;
        }
        let mut evicted = Vec::new();
        while self.used + self.reserved + size > self.max {
            let (_, oldest) = self.order.pop_first()?;
            if let Some(entry) = self.entries.remove(&oldest) {
                self.used -= entry.size;
            }
            evicted.push(oldest);
        }
        Some(evicted)
    }

    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob(n: u8) -> Object {
        Object::Blob(Sha256Hex::parse(&format!("{n:02x}").repeat(32)).expect("hex"))
    }

    /// Runs `ops` ("+n size", "touch n", "reserve size", "release size") on an index of
    /// `max` bytes and checks what each evicted, then the bytes used.
    fn check(max: u64, ops: &[(&str, &[u8])], used: u64) {
        let mut index = Index::new(max);
        for (op, expect) in ops {
            let words: Vec<&str> = op.split_whitespace().collect();
            let num = |i: usize| words[i].parse::<u64>().expect("number");
            let evicted = match words[0] {
                "+" => index.insert(blob(num(1) as u8), num(2), None),
                "touch" => {
                    assert!(index.touch(&blob(num(1) as u8)).is_some(), "{op}");
                    Some(vec![])
                }
                "reserve" => index.reserve(num(1)),
                "release" => {
                    index.release(num(1));
                    Some(vec![])
                }
                _ => panic!("unknown op {op}"),
            };
            let expect: Option<Vec<Object>> = if expect == &[255] {
                None
            } else {
                Some(expect.iter().map(|&n| blob(n)).collect())
            };
            assert_eq!(evicted, expect, "{op}");
        }
        assert_eq!(index.used(), used);
    }

    #[test]
    fn evicts_the_least_recently_used_first() {
        check(10, &[("+ 1 4", &[]), ("+ 2 4", &[]), ("+ 3 4", &[1])], 8);
        check(
            10,
            &[
                ("+ 1 4", &[]),
                ("+ 2 4", &[]),
                ("touch 1", &[]),
                ("+ 3 4", &[2]),
            ],
            8,
        );
        check(10, &[("+ 1 3", &[]), ("+ 2 3", &[]), ("+ 3 9", &[1, 2])], 9);
    }

    #[test]
    fn what_cannot_fit_is_not_added_and_evicts_nothing() {
        check(10, &[("+ 1 4", &[]), ("+ 2 11", &[255])], 4);
        check(10, &[("reserve 8", &[]), ("+ 1 4", &[255])], 0);
    }

    #[test]
    fn reservations_count_against_the_budget() {
        check(
            10,
            &[
                ("+ 1 4", &[]),
                ("+ 2 4", &[]),
                ("reserve 4", &[1]),
                ("release 4", &[]),
                ("+ 3 4", &[]),
            ],
            12 - 4,
        );
    }

    #[test]
    fn replacing_an_object_counts_it_once() {
        check(10, &[("+ 1 4", &[]), ("+ 1 4", &[]), ("+ 2 6", &[])], 10);
    }
}
