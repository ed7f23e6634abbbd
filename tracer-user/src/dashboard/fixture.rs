//! Deterministic exports for the dashboard's tests: a shop whose every
//! count is a known rate times the time since tracing began, so rates,
//! sparklines and first sightings have a known truth.

use std::sync::Arc;

use super::state::State;
use crate::export::{
    Export,
    schema::{
        self, Access, ArmedAndUnarmed, Behaviour, Bucket, Finding, KeyReport, LockReport,
        MapReport, MapSampling, Ops, Probe, SCHEMA_V1, Site, WaitNs, Window,
    },
};

pub const MS: u64 = 1_000_000;
pub const SECOND: u64 = 1_000_000_000;
/// The shop's last snapshot.
pub const END_SECONDS: u64 = 83;

/// An export with one map read `reads` times, as many events, and
/// `dropped` events lost, at `at_ns` into the window.
pub fn counting(at_ns: u64, reads: u64, dropped: u64) -> Export {
    let mut export = empty(at_ns);
    export.tracer.events = reads;
    export.tracer.dropped = dropped;
    export.maps.push(MapReport {
        id: "0xc000010000".to_owned(),
        ops: Ops {
            read: reads,
            ..Ops::default()
        },
        ..MapReport::default()
    });
    export
}

fn empty(at_ns: u64) -> Export {
    Export {
        schema: SCHEMA_V1.to_owned(),
        target: schema::Target {
            pid: 4242,
            exe: "/srv/shop".to_owned(),
            language: "go".to_owned(),
            go_version: Some("go1.27.3".to_owned()),
            ..schema::Target::default()
        },
        window: Window {
            start_unix_ns: 1_763_780_000 * SECOND,
            duration_ns: at_ns,
        },
        tracer: schema::Tracer {
            events: 0,
            maps_seen: 0,
            attach_ns: 250 * MS,
            probes: probes(),
            ..schema::Tracer::default()
        },
        maps: Vec::new(),
        locks: Vec::new(),
        findings: Vec::new(),
    }
}

/// A state that watched the shop for [`END_SECONDS`], a snapshot a second.
pub fn live_state() -> State {
    let mut state = State::live(Arc::new(shop_at(0)));
    for second in 1..=END_SECONDS {
        state.apply(Arc::new(shop_at(second)));
    }
    state
}

/// [`live_state`], every snapshot sampled as [`sampled`] has it.
pub fn sampled_live_state() -> State {
    let mut state = State::live(Arc::new(sampled(shop_at(0))));
    for second in 1..=END_SECONDS {
        state.apply(Arc::new(sampled(shop_at(second))));
    }
    state
}

/// The shop's export `seconds` into tracing. Its stock map is twice as
/// busy from 40 s to 50 s (a sale); a race on the cart map starts at 80 s.
pub fn shop_at(seconds: u64) -> Export {
    let mut export = empty(seconds * SECOND);
    if seconds == 0 {
        return export;
    }
    let sale = seconds.clamp(40, 50) - 40;
    let stock = map(
        "0xc000123000",
        Ops {
            read: 22_500 * (seconds + sale),
            write: 11_250 * (seconds + sale),
            ..Ops::default()
        },
        &[
            ("sku-1337", 0.40, 0.0),
            ("sku-7", 0.07, 0.0),
            ("sku-42", 0.05, 0.001),
            ("sku-\u{1b}[2J\u{7}evil", 0.01, 0.002),
            ("sku-100", 0.004, 0.003),
        ],
        &[
            site("main.(*Store).Reserve", "/src/shop/store.go", 88),
            site("main.(*Store).Stock", "/src/shop/store.go", 61),
        ],
    );
    let cart = map(
        "0xc000200000",
        Ops {
            read: 3_000 * seconds,
            write: 1_500 * seconds,
            delete: 1_500 * seconds,
            ..Ops::default()
        },
        &[("user-7", 0.12, 0.0), ("user-12", 0.09, 0.0)],
        &[
            site("main.(*Cart).Add", "/src/shop/cart.go", 30),
            site("main.(*Cart).Checkout", "/src/shop/cart.go", 52),
        ],
    );
    let report = map(
        "0xc000300000",
        Ops {
            iterate: 20 * seconds,
            clear: seconds,
            ..Ops::default()
        },
        &[],
        &[site("main.report", "/src/shop/report.go", 12)],
    );
    let stock = MapReport {
        kind: Some("map".to_owned()),
        go_type: Some("map[string]int".to_owned()),
        global: Some("main.stock".to_owned()),
        ..stock
    };
    export.maps = vec![
        with_goroutines(stock, 12, 8, 4),
        with_goroutines(cart, 6, 6, 3),
        report,
    ];
    let peaks = [if sale > 0 { 67_500 } else { 33_750 }, 6_000, 21];
    for (map, peak) in export.maps.iter_mut().zip(peaks) {
        map.ops_per_sec = map.ops.total() as f64 / seconds as f64;
        map.peak_ops_per_sec = peak;
    }
    export.locks = locks(seconds);
    export.findings = findings(seconds, &export.maps[0], &export.locks[0]);
    export.tracer.maps_seen = 3;
    let ops: u64 = export.maps.iter().map(|map| map.ops.total()).sum();
    let waits: u64 = export.locks.iter().map(|lock| lock.contended).sum();
    export.tracer.events = ops + waits;
    export.tracer.dropped = if seconds >= 30 { 12 } else { 0 };
    if export.tracer.dropped > 0 {
        export.tracer.dropped_by_cpu = vec![12, 0];
    }
    export
}

/// The shop's last snapshot as a budgeted recording sampled it: the
/// stock map's probes counted for 62% of the window.
pub fn sampled(mut export: Export) -> Export {
    export.tracer.max_overhead = Some(0.05);
    export.tracer.estimated_overhead = Some(0.031);
    for probe in export
        .tracer
        .probes
        .iter_mut()
        .filter(|probe| probe.attached)
    {
        probe.coverage = Some(0.62);
    }
    if let Some(lock) = export.locks.first_mut() {
        lock.coverage = Some(0.8);
    }
    // The probes saw the shop's operations in 62% of the window, and the
    // estimates scale them to all of it.
    for map in &mut export.maps {
        let estimate = |traced: u64| (traced as f64 / 0.62).round() as u64;
        let traced = map.ops;
        map.ops = Ops {
            read: estimate(traced.read),
            write: estimate(traced.write),
            delete: estimate(traced.delete),
            iterate: estimate(traced.iterate),
            clear: estimate(traced.clear),
        };
        map.traced = Some(traced);
        map.coverage = Some(0.62);
        map.ops_per_sec /= 0.62;
        map.peak_ops_per_sec = estimate(map.peak_ops_per_sec);
    }
    // Its threads stayed awake with the map probes in, as the demo
    // shop's do: the dashboard says its map rates may read high.
    let behaviour = |sleeps_per_sec, own_cpu, probe_cpu| Behaviour {
        sleeps_per_sec: Some(sleeps_per_sec),
        own_cpu,
        probe_cpu,
    };
    export.tracer.map_sampling = Some(MapSampling {
        armed_ns: (export.window.duration_ns as f64 * 0.62) as u64,
        pace: 1.0,
        behaviour: Some(ArmedAndUnarmed {
            armed: behaviour(900.0, 0.16, 0.05),
            unarmed: behaviour(6_300.0, 0.14, 0.0),
        }),
    });
    export
}

fn probes() -> Vec<Probe> {
    let probe = |symbol: &str, reason: Option<&str>, unused: bool| Probe {
        symbol: symbol.to_owned(),
        attached: reason.is_none(),
        reason: reason.map(str::to_owned),
        unused,
        entry_offset: reason.is_none().then_some(4),
        exits: None,
        coverage: None,
        failures: Default::default(),
        // A map probe's hit, trap and program, costs about 1.3 µs.
        hits: reason.is_none().then_some(1_200_000),
        cost_ns: reason.is_none().then_some(1_560_000_000),
    };
    vec![
        probe("runtime.mapaccess1_faststr", None, false),
        probe("runtime.mapassign_faststr", None, false),
        probe("runtime.mapdelete_faststr", None, false),
        probe(
            "runtime.mapaccess2_fast64",
            Some("not in this binary: the program never uses it"),
            true,
        ),
        probe(
            "runtime.semacquire1",
            Some("attach failed: no such file"),
            false,
        ),
    ]
}

fn site(function: &str, file: &str, line: u32) -> Site {
    Site {
        function: function.to_owned(),
        file: file.to_owned(),
        line,
        ops: 0,
    }
}

/// A map whose keys take the given shares (and over-count bounds, as
/// shares) of its operations, and whose sites split them evenly.
fn map(id: &str, ops: Ops, keys: &[(&str, f64, f64)], sites: &[Site]) -> MapReport {
    let total = ops.total();
    let share_of = |share: f64| (share * total as f64).round() as u64;
    let sites: Vec<Site> = (sites.iter().enumerate())
        .map(|(index, site)| Site {
            ops: total / (sites.len() as u64)
                + u64::from(index == 0) * (total % sites.len() as u64),
            ..site.clone()
        })
        .collect();
    MapReport {
        id: id.to_owned(),
        ops,
        top_keys: (keys.iter())
            .map(|&(key, share, error)| KeyReport {
                key: key.to_owned(),
                count: share_of(share),
                share,
                error: share_of(error),
                key_hex: None,
            })
            .collect(),
        touched_by: sites.iter().map(|site| site.function.clone()).collect(),
        sites,
        ops_per_sec: 0.0,
        peak_ops_per_sec: 0,
        ..MapReport::default()
    }
}

fn with_goroutines(map: MapReport, goroutines: u64, readers: u64, writers: u64) -> MapReport {
    MapReport {
        goroutines,
        readers,
        writers,
        ..map
    }
}

fn locks(seconds: u64) -> Vec<LockReport> {
    let lock =
        |id: &str, kind: &str, per_second: u64, wait: WaitNs, buckets: &[(u32, u64)], at: Site| {
            let contended = per_second * seconds;
            LockReport {
                id: id.to_owned(),
                kind: kind.to_owned(),
                contended,
                goroutines: 8,
                wait_ns: WaitNs {
                    total: contended * wait.p50,
                    ..wait
                },
                histogram: (buckets.iter())
                    .map(|&(power, percent)| Bucket {
                        le_ns: 1 << power,
                        count: contended * percent / 100,
                    })
                    .collect(),
                sites: vec![Site {
                    ops: contended,
                    ..at
                }],
                contended_per_sec: per_second as f64,
                coverage: None,
                behind_writer: (kind == "rwmutex.write").then_some(contended / 4),
                global: None,
            }
        };
    let waits = |p50: u64, p99: u64, max: u64| WaitNs {
        p50,
        p90: p50 + (p99 - p50) / 2,
        p99,
        p999: max,
        max,
        total: 0,
    };
    vec![
        lock(
            "0xc000456000",
            "mutex",
            40,
            waits(4 * MS, 44 * MS, 51 * MS),
            &[(21, 5), (22, 70), (23, 10), (25, 10), (26, 5)],
            site("main.(*inventory).take", "/src/shop/inventory.go", 40),
        ),
        lock(
            "0xc000789000",
            "rwmutex.read",
            120,
            waits(40_000, 90_000, 300_000),
            &[(15, 30), (16, 50), (17, 15), (19, 5)],
            site("main.(*catalogue).price", "/src/shop/catalogue.go", 27),
        ),
        lock(
            "0xc000789000",
            "rwmutex.write",
            2,
            waits(6 * MS, 7 * MS, 8 * MS),
            &[(22, 20), (23, 80)],
            site("main.(*catalogue).reprice", "/src/shop/catalogue.go", 44),
        ),
    ]
}

fn findings(seconds: u64, stock: &MapReport, mutex: &LockReport) -> Vec<Finding> {
    let mut findings = Vec::new();
    if seconds >= 80 {
        let count = 53 * (seconds - 79);
        let get = Site {
            ops: count,
            ..site("main.(*Cart).Add", "/src/shop/cart.go", 30)
        };
        let set = Site {
            ops: count,
            ..site("main.(*Cart).Checkout", "/src/shop/cart.go", 52)
        };
        findings.push(Finding {
            kind: "concurrent_map_access".to_owned(),
            severity: "critical".to_owned(),
            message: format!(
                "map 0xc000200000 was used by two goroutines at once {count} times, a read in \
                 main.(*Cart).Add (cart.go:30) and a delete in main.(*Cart).Checkout (cart.go:52): \
                 an unsynchronised map is corrupted by this"
            ),
            subject: "0xc000200000".to_owned(),
            sites: vec![get.clone(), set.clone()],
            count,
            accesses: vec![
                Access {
                    op: "read".to_owned(),
                    key: Some("user-7".to_owned()),
                    goroutine: Some(19),
                    site: Some(get),
                },
                Access {
                    op: "delete".to_owned(),
                    key: Some("user-12".to_owned()),
                    goroutine: Some(18),
                    site: Some(set),
                },
            ],
            remedy: Some("guard".to_owned()),
            ..Finding::default()
        });
    }
    findings.push(Finding {
        kind: "hot_key".to_owned(),
        severity: "warning".to_owned(),
        message: format!(
            "key \"sku-1337\" takes 40% of the {} operations on map 0xc000123000: its load cannot \
             spread",
            stock.ops.total()
        ),
        subject: stock.id.clone(),
        sites: stock.sites.clone(),
        count: stock.top_keys[0].count,
        accesses: Vec::new(),
        ..Finding::default()
    });
    findings.push(Finding {
        kind: "lock_convoy".to_owned(),
        severity: "warning".to_owned(),
        message: "mutex 0xc000456000: 8 goroutines queue for it and the slowest waits (p99 \
                  44.0 ms) are 11× the typical one (p50 4.000 ms)"
            .to_owned(),
        subject: mutex.id.clone(),
        sites: mutex.sites.clone(),
        count: mutex.contended,
        accesses: Vec::new(),
        ..Finding::default()
    });
    findings
}
