//! The vendored sled (`vendor/sled/PATCHES.md`: its log writes are patched) through its
//! public API, against a `BTreeMap` model: whatever the order of inserts, removes and
//! flushes, every key is found, in order, before and after the store is reopened.

use proptest::prelude::*;
use std::collections::BTreeMap;

/// One step of a workload shaped like the hub's: tables written in key order (seqs,
/// time-ordered ids), a table written at random, and removals at the old end of a table
/// (a folder's entries leave it as messages change status) or anywhere.
#[derive(Clone, Debug)]
enum Op {
    /// Appends `n` keys to table `t` (of 3), in a batch.
    Append { t: u8, n: u8 },
    /// Inserts a key at a random place in the random table.
    Random(u32),
    /// Removes the `n` oldest keys of table `t`.
    RemoveOldest { t: u8, n: u8 },
    /// Removes the key of the model at this position (modulo its length), if any.
    RemoveAt(u32),
    /// Overwrites the value of the key at this position.
    Update(u32),
    /// Flushes the log.
    Flush,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (0u8..3, 1u8..24).prop_map(|(t, n)| Op::Append { t, n }),
        3 => any::<u32>().prop_map(Op::Random),
        3 => (0u8..3, 1u8..12).prop_map(|(t, n)| Op::RemoveOldest { t, n }),
        1 => any::<u32>().prop_map(Op::RemoveAt),
        1 => any::<u32>().prop_map(Op::Update),
        1 => Just(Op::Flush),
    ]
}

/// `i` + table + 0 + seq: the shape of an index entry.
fn table_key(t: u8, seq: u64) -> Vec<u8> {
    let mut k = vec![b'i', b'a' + t, 0];
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

fn same(tree: &sled::Tree, model: &BTreeMap<Vec<u8>, Vec<u8>>) -> Result<(), TestCaseError> {
    let forward: Vec<(Vec<u8>, Vec<u8>)> = tree
        .iter()
        .map(|kv| kv.map(|(k, v)| (k.to_vec(), v.to_vec())))
        .collect::<Result<_, _>>()
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    let expected: Vec<(Vec<u8>, Vec<u8>)> =
        model.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    prop_assert_eq!(&forward, &expected);
    let backward: Vec<Vec<u8>> = tree
        .iter()
        .rev()
        .map(|kv| kv.map(|(k, _)| k.to_vec()))
        .collect::<Result<_, _>>()
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    let expected_back: Vec<Vec<u8>> = model.keys().rev().cloned().collect();
    prop_assert_eq!(backward, expected_back);
    for t in 0..3u8 {
        let prefix = [b'i', b'a' + t, 0];
        let n = tree.scan_prefix(prefix).count();
        prop_assert_eq!(
            n,
            model
                .range(prefix.to_vec()..)
                .take_while(|(k, _)| k.starts_with(&prefix))
                .count()
        );
    }
    for (k, v) in model.iter().step_by(7) {
        let got = tree
            .get(k)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(got.as_deref(), Some(v.as_slice()));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// sled's leaves split at 17 keys and merge below 4: thousands of keys, so hundreds
    /// of splits and merges, and log buffers written by the patched path.
    #[test]
    fn leaf_splits_keep_every_key_in_order(ops in prop::collection::vec(op(), 200..600)) {
        let dir = tempfile::tempdir().unwrap();
        let mut model = BTreeMap::new();
        let mut next = [0u64; 3];
        let mut oldest = [0u64; 3];
        let mut version = 0u32;
        {
            let db = sled::Config::new().path(dir.path()).flush_every_ms(None).open().unwrap();
            let tree = db.open_tree("hub").unwrap();
            for op in &ops {
                version += 1;
                let val = version.to_be_bytes().to_vec();
                let mut batch = sled::Batch::default();
                match *op {
                    Op::Append { t, n } => {
                        for _ in 0..n {
                            let k = table_key(t, next[t as usize]);
                            next[t as usize] += 1;
                            batch.insert(k.clone(), val.clone());
                            model.insert(k, val.clone());
                        }
                    }
                    Op::Random(r) => {
                        let mut k = b"C".to_vec();
                        k.extend_from_slice(&r.to_be_bytes());
                        batch.insert(k.clone(), val.clone());
                        model.insert(k, val.clone());
                    }
                    Op::RemoveOldest { t, n } => {
                        for _ in 0..n {
                            let t = t as usize;
                            if oldest[t] < next[t] {
                                let k = table_key(t as u8, oldest[t]);
                                oldest[t] += 1;
                                batch.remove(k.clone());
                                model.remove(&k);
                            }
                        }
                    }
                    Op::RemoveAt(i) | Op::Update(i) => {
                        if model.is_empty() {
                            continue;
                        }
                        let k = model.keys().nth(i as usize % model.len()).cloned().unwrap();
                        if matches!(op, Op::RemoveAt(_)) {
                            batch.remove(k.clone());
                            model.remove(&k);
                        } else {
                            batch.insert(k.clone(), val.clone());
                            model.insert(k, val.clone());
                        }
                    }
                    Op::Flush => {
                        db.flush().unwrap();
                        continue;
                    }
                }
                tree.apply_batch(batch).unwrap();
            }
            same(&tree, &model)?;
            db.flush().unwrap();
        }
        let db = sled::Config::new().path(dir.path()).open().unwrap();
        let tree = db.open_tree("hub").unwrap();
        same(&tree, &model)?;
    }
}
