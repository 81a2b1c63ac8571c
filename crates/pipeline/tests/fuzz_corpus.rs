//! Bad bytes never panic the decoder. Every file of the MySQL corpus is
//! mutated (truncated, bits flipped, bytes overwritten) and fed through the
//! file reader, the event parsers, the processor (row decoding and value
//! rendering, compressed transactions, partial JSON) with the schema its
//! tables need. Mutations are made both to the raw file (the checksums then
//! catch most of them) and to event bodies after the checksum check, and
//! to the decompressed contents of compressed transactions, so the parsers
//! see the corrupt bytes. Every failure must be an error value; a panic
//! fails the test naming the file and the seed that reproduces it.
//!
//! `SLUICE_FUZZ_ITERATIONS` (per file, default 500) and `SLUICE_FUZZ_SEED`
//! set a longer or different run; the largest single allocation is checked
//! against a bound so a corrupt length never turns into a huge allocation.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};

use common::*;
use sluice_binlog::event::{types, Event};
use sluice_binlog::file::BinlogFile;
use sluice_binlog::mysql_gtid::{GtidSet, MysqlGtid};
use sluice_binlog::payload::{self, PayloadHeader};
use sluice_binlog::rows::{read_row_image, read_shared_image, RowsHeader, RowsKind, TableMap};
use sluice_pipeline::OutputConfig;
use sluice_schema::ddl::Flavor;

/// Records the largest single allocation.
struct Tracking;

static LARGEST: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LARGEST.fetch_max(l.size(), Ordering::Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LARGEST.fetch_max(new, Ordering::Relaxed);
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static ALLOC: Tracking = Tracking;

/// No allocation may exceed this (the biggest corpus file is 11 KB).
const ALLOCATION_BOUND: usize = 64 << 20;

/// SplitMix64: small, deterministic, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

/// Flips bits, overwrites bytes or truncates `b`.
fn mutate(rng: &mut Rng, b: &mut Vec<u8>) {
    for _ in 0..1 + rng.below(4) {
        if b.is_empty() {
            return;
        }
        match rng.below(10) {
            0 => {
                let at = rng.below(b.len());
                b.truncate(at);
            }
            1..=2 => {
                let at = rng.below(b.len());
                b[at] = rng.next() as u8;
            }
            3 => {
                // A length-like field gone huge.
                let at = rng.below(b.len());
                for x in b.iter_mut().skip(at).take(4) {
                    *x = 0xFF;
                }
            }
            _ => {
                let at = rng.below(b.len());
                b[at] ^= 1 << rng.below(8);
            }
        }
    }
}

/// A compressed transaction stored uncompressed (algorithm NONE), so
/// mutations reach its inner events.
fn uncompressed(ev: &Event) -> Option<Event> {
    let data = payload::decompress(&ev.body).ok()?;
    let mut body = vec![2, 3, 0xFC, 0xFF, 0x00];
    for (field, v) in [(3u8, data.len()), (1u8, data.len())] {
        body.push(field);
        body.push(9);
        body.push(0xFE);
        body.extend_from_slice(&(v as u64).to_le_bytes());
    }
    body.push(0);
    body.extend_from_slice(&data);
    let mut out = ev.clone();
    out.body = body;
    Some(out)
}

/// Every binlog-level parser on one event; results are ignored, only
/// panics matter.
fn parse_all(ev: &Event, maps: &mut std::collections::HashMap<u64, TableMap>, depth: u32) {
    let b = &ev.body;
    let t = ev.header.event_type;
    let _ = sluice_binlog::event::Query::parse(b);
    let _ = sluice_binlog::event::Rotate::parse(b);
    let _ = sluice_binlog::event::FormatDescription::parse_with_footer(b);
    let _ = MysqlGtid::parse(types::MYSQL_GTID, b);
    let _ = MysqlGtid::parse(types::MYSQL_GTID_TAGGED, b);
    let _ = GtidSet::parse_previous_gtids(b);
    let _ = sluice_binlog::event::parse_mariadb_gtid_list(b);
    let _ = PayloadHeader::parse(b);
    match t {
        types::TABLE_MAP => {
            if let Ok(tm) = TableMap::parse(b) {
                maps.insert(tm.table_id, tm);
            }
        }
        types::TRANSACTION_PAYLOAD if depth == 0 => {
            if let Ok(evs) = payload::inner_events(ev) {
                for e in &evs {
                    parse_all(e, maps, 1);
                }
            }
        }
        _ if RowsKind::of_event_type(t).is_some() => {
            let Ok(h) = RowsHeader::parse(t, b) else {
                return;
            };
            let Some(tm) = maps.get(&h.table_id) else {
                return;
            };
            if h.column_count != tm.columns.len() {
                return; // as the processor does (schema drift)
            }
            let (mut c, mut a, mut p) = (Vec::new(), Vec::new(), Vec::new());
            let mut pos = h.rows_offset;
            while pos < b.len() {
                let Ok(next) = read_row_image(b, pos, tm, &h.present, &mut c, &mut a) else {
                    return;
                };
                pos = next;
                if h.kind == RowsKind::Update {
                    if h.partial {
                        let Ok(next) = read_shared_image(b, pos, tm, &mut p) else {
                            return;
                        };
                        pos = next;
                    }
                    let Ok(next) = read_row_image(b, pos, tm, &h.present_after, &mut c, &mut a)
                    else {
                        return;
                    };
                    pos = next;
                }
            }
        }
        _ => {}
    }
}

fn flavor(name: &str) -> Flavor {
    if name.contains("mariadb") {
        Flavor::MariaDb
    } else {
        Flavor::MySql
    }
}

/// One mutated run; returns whether the decoder reported an error.
fn one(name: &str, schema: &str, raw: &[u8], events: &[Event], rng: &mut Rng) -> bool {
    let output = OutputConfig {
        gtid_position: true,
        primary_keys: true,
        ..OutputConfig::default()
    };
    let evs: Vec<Result<Event, String>> = if rng.below(3) == 0 {
        // The raw file: the reader (magic, headers, sizes, checksums).
        let mut bytes = raw.to_vec();
        mutate(rng, &mut bytes);
        match BinlogFile::from_bytes(name, bytes) {
            Ok(f) => f.map(|r| r.map_err(|e| e.to_string())).collect(),
            Err(_) => return true,
        }
    } else {
        // Event bodies past the checksum check, compressed transactions
        // opened up first half the time.
        let mut evs: Vec<Event> = events.to_vec();
        for e in evs.iter_mut() {
            if e.header.event_type == types::TRANSACTION_PAYLOAD && rng.below(2) == 0 {
                if let Some(u) = uncompressed(e) {
                    *e = u;
                }
            }
        }
        for _ in 0..1 + rng.below(2) {
            let i = rng.below(evs.len());
            if let Some(e) = evs.get_mut(i) {
                mutate(rng, &mut e.body);
            }
        }
        evs.into_iter().map(Ok).collect()
    };
    let mut maps = std::collections::HashMap::new();
    for e in evs.iter().flatten() {
        parse_all(e, &mut maps, 0);
    }
    let r = run_events(evs, schema, flavor(name), output);
    r.error.is_some()
}

#[test]
fn mutated_corpus_files_never_panic() {
    let per_file: usize = std::env::var("SLUICE_FUZZ_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    let base_seed: u64 = std::env::var("SLUICE_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5EED);
    let started = std::time::Instant::now();
    let (mut runs, mut errors) = (0usize, 0usize);
    let files = corpus_files();
    for (k, (name, schema)) in files.iter().enumerate() {
        let raw = std::fs::read(corpus(name)).unwrap();
        let events: Vec<Event> = BinlogFile::from_bytes(name, raw.clone())
            .unwrap()
            .map_while(Result::ok)
            .collect();
        for i in 0..per_file {
            let seed = base_seed ^ ((k as u64) << 32) ^ i as u64;
            let mut rng = Rng(seed);
            if std::env::var_os("SLUICE_FUZZ_TRACE").is_some() {
                eprintln!("{name} seed {seed}");
            }
            let res = catch_unwind(AssertUnwindSafe(|| {
                one(name, schema, &raw, &events, &mut rng)
            }));
            match res {
                Ok(err) => errors += usize::from(err),
                Err(p) => {
                    let msg = p
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_default();
                    panic!("{name}: the decoder panicked with seed {seed} (SLUICE_FUZZ_SEED={base_seed}, file #{k}, iteration {i}): {msg}");
                }
            }
            runs += 1;
        }
    }
    let largest = LARGEST.load(Ordering::Relaxed);
    println!(
        "fuzz: {runs} mutated runs over {} files, {errors} ended in an error value, 0 panics, largest allocation {largest} bytes, {:.1} s",
        files.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        largest < ALLOCATION_BOUND,
        "an allocation of {largest} bytes"
    );
    assert!(
        errors > runs / 10,
        "mutations must reach the decoder: {errors} errors in {runs} runs"
    );
}
