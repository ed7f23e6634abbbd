use tracer_common::{LockOp, MapOp};

use super::*;
use crate::events::{Event, LockWait, MapAccess, fixtures::text_key};

const CACHE: u64 = 0xc000123000;
const LOCK: u64 = 0xc000456000;
/// Return addresses: into main.(*Cache).Get, into main.handler (its
/// caller), and into main.(*Cache).Set where sync.(*Mutex).Lock is
/// inlined, whose caller is main.worker.
const GET: u64 = 0x4010;
const HANDLER: u64 = 0x4020;
const SET_LOCK: u64 = 0x4030;
const WORKER: u64 = 0x4040;

fn frame(function: &str, line: u32) -> CallSite {
    CallSite {
        function: function.to_owned(),
        file: "/src/shop/cache.go".to_owned(),
        line,
    }
}

fn resolve(stack: &Stack) -> Vec<Location> {
    stack
        .frames()
        .map(|pc| Location {
            address: pc - 1,
            frames: match pc {
                GET => vec![frame("main.(*Cache).Get", 20)],
                HANDLER => vec![frame("main.handler", 40)],
                SET_LOCK => vec![
                    frame("sync.(*Mutex).Lock", 0),
                    frame("main.(*Cache).Set", 14),
                ],
                WORKER => vec![frame("main.worker", 44)],
                _ => vec![frame("0x?", 0)],
            },
        })
        .collect()
}

/// 600 reads from Get called by handler, 400 writes from Get called
/// directly (a one-frame stack), and 10 waits of 5 µs and 2 of 1 ms on the
/// lock Set takes, called from worker.
fn profile() -> Profile {
    let mut aggregate = Aggregate::default();
    let access = |op, stack| {
        Event::MapAccess(MapAccess {
            op,
            g: 1,
            timestamp_ns: 0,
            map: CACHE,
            instance: 0,
            key: text_key("sku-42"),
            stack: Stack::of(stack),
        })
    };
    for _ in 0..600 {
        aggregate.record(access(MapOp::Read, [GET, HANDLER, 0, 0]));
    }
    for _ in 0..400 {
        aggregate.record(access(MapOp::Write, [GET, 0, 0, 0]));
    }
    for n in 0..12 {
        aggregate.record(Event::LockWait(LockWait {
            op: LockOp::MutexLock,
            tid: 1,
            goid: 1 + n,
            g: 1 + n,
            timestamp_ns: 0,
            lock: LOCK,
            wait_ns: if n < 10 { 5_000 } else { 1_000_000 },
            stack: Stack::of([SET_LOCK, WORKER, 0, 0]),
        }));
    }
    build(
        &aggregate,
        &resolve,
        &Scale::WHOLE,
        Window {
            start_unix_ns: 1_700_000_000_000_000_000,
            duration_ns: 2_000_000_000,
        },
    )
}

#[test]
fn folded_stacks_are_root_first_with_inlined_calls_inside_their_caller() {
    assert_eq!(
        folded::render(&profile()),
        "lock wait ns;main.worker;main.(*Cache).Set;sync.(*Mutex).Lock 2050000\n\
         map ops;main.(*Cache).Get 400\n\
         map ops;main.handler;main.(*Cache).Get 600\n"
    );
}

#[test]
fn frames_from_the_binary_cannot_break_a_folded_line() {
    let mut profile = profile();
    profile.samples[0].locations[0].frames[0].function = "main.evil;\n1 x".to_owned();
    let text = folded::render(&profile);
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(text.contains("main.evil:\\u{a}1 x"), "{text}");
}

#[test]
fn overflowing_stacks_are_counted_under_a_frame_of_their_own() {
    let mut aggregate = Aggregate::default();
    for pc in 1..=crate::aggregate::stacks::STACK_CAPACITY as u64 + 3 {
        aggregate.record(Event::MapAccess(MapAccess {
            op: MapOp::Read,
            g: 1,
            timestamp_ns: 0,
            map: CACHE,
            instance: 0,
            key: text_key("k"),
            stack: Stack::of([pc, 0, 0, 0]),
        }));
    }
    let profile = build(
        &aggregate,
        &resolve,
        &Scale::WHOLE,
        Window {
            start_unix_ns: 0,
            duration_ns: 1,
        },
    );
    let total: u64 = profile.samples.iter().map(|sample| sample.count).sum();
    assert_eq!(total, crate::aggregate::stacks::STACK_CAPACITY as u64 + 3);
    assert!(
        folded::render(&profile).contains("map ops;[stack not kept] 3\n"),
        "nothing counted is lost"
    );
}

#[test]
fn a_flame_graph_draws_one_measure() {
    let profile = profile();
    let mut svg = Vec::new();
    let drawn = flamegraph::render(&profile, Measure::LockWaits, &mut svg).expect("draws");
    assert_eq!(drawn, flamegraph::Drawn::Stacks);
    let svg = String::from_utf8(svg).expect("SVG is text");
    assert!(svg.starts_with("<?xml"), "{}", &svg[..100]);
    assert!(svg.contains("main.worker") && svg.contains("Lock wait time"));
    assert!(
        !svg.contains("main.handler"),
        "map operations are another graph"
    );

    let no_waits = Profile {
        samples: (profile.samples.iter())
            .filter(|sample| sample.measure() == Measure::MapOps)
            .cloned()
            .collect(),
        ..profile
    };
    let mut svg = Vec::new();
    let drawn = flamegraph::render(&no_waits, Measure::LockWaits, &mut svg).expect("draws");
    assert_eq!(drawn, flamegraph::Drawn::Nothing { what: "lock waits" });
    let svg = String::from_utf8(svg).expect("SVG is text");
    assert!(svg.contains("No lock waits were recorded."), "{svg}");
}

#[test]
fn pprof_has_go_mutex_profile_samples_and_map_operations() {
    let mut gzipped = Vec::new();
    pprof::write(&profile(), "/srv/shop", &mut gzipped).expect("writes");
    let proto = pprof::read(&gzipped[..]).expect("a gzipped profile.proto message");
    let text = |id: i64| proto.string_table[id as usize].as_str();
    assert_eq!(proto.string_table[0], "", "pprof's rule: string 0 is empty");
    let types: Vec<(&str, &str)> = (proto.sample_type.iter())
        .map(|kind| (text(kind.r#type), text(kind.unit)))
        .collect();
    assert_eq!(
        types,
        [
            ("contentions", "count"),
            ("delay", "nanoseconds"),
            ("operations", "count")
        ]
    );
    assert_eq!(text(proto.default_sample_type), "delay");
    assert_eq!(proto.duration_nanos, 2_000_000_000);

    let function = |id: u64| text(proto.function[id as usize - 1].name);
    let lines = |location: u64| -> Vec<(&str, i64)> {
        (proto.location[location as usize - 1].line.iter())
            .map(|line| (function(line.function_id), line.line))
            .collect()
    };
    let waits: Vec<_> = (proto.sample.iter())
        .filter(|sample| sample.value[0] > 0)
        .collect();
    assert_eq!(waits.len(), 1);
    assert_eq!(waits[0].value, [12, 2_050_000, 0]);
    assert_eq!(
        lines(waits[0].location_id[0]),
        [("sync.(*Mutex).Lock", 0), ("main.(*Cache).Set", 14)],
        "the leaf's inlined call first, then the function it is in"
    );
    assert_eq!(lines(waits[0].location_id[1]), [("main.worker", 44)]);
    let labels: Vec<(&str, &str)> = (waits[0].label.iter())
        .map(|label| (text(label.key), text(label.str)))
        .collect();
    assert_eq!(labels, [("lock", "0xc000456000"), ("wait", "mutex")]);

    let operations: i64 = proto.sample.iter().map(|sample| sample.value[2]).sum();
    assert_eq!(operations, 1_000);
    assert_eq!(
        proto.location.len(),
        4,
        "each return address is one location, shared by the samples through it"
    );
}
