//! How the target ended, in the export: its exit, and a race the Go
//! runtime caught. A program that dies of `fatal error: concurrent map
//! writes` names the map race it died of, and where; contend's own
//! detector sees a race only when its probes catch two operations at once,
//! which it may not have for the one collision the runtime stopped at (or
//! at all, under a slowdown budget that takes the map probes out). The
//! runtime's verdict then becomes the finding, with the map's other
//! operations from contend's recording as the other side.

use super::schema::{Access, Exit, Export, Finding, MapReport, Site};
use crate::findings::advice;

/// The kind of finding a map race is.
const RACE: &str = "concurrent_map_access";

/// Records that the target ended as `exit` says, with the race it died of
/// as a finding, if contend has none for that map.
pub fn record_exit(export: &mut Export, exit: Exit) {
    let race = caught_by_runtime(export, &exit);
    export.target.exit = Some(exit);
    if let Some(race) = race {
        export.findings.insert(0, race);
    }
}

/// The race the runtime killed the target for, on the traced map that the
/// dying function used; `None` when it died of something else, or contend
/// already reports a race on that map.
fn caught_by_runtime(export: &Export, exit: &Exit) -> Option<Finding> {
    let fatal = exit.fatal_error.as_deref()?;
    let (died_doing, other_doing) = ops_of(fatal)?;
    let died_at = exit.fatal_site.as_ref()?;
    let map = map_used_by(&export.maps, &died_at.function)?;
    let already = export
        .findings
        .iter()
        .any(|finding| finding.kind == RACE && finding.subject == map.id);
    if already {
        return None;
    }
    let dying = site_in(map, &died_at.function).unwrap_or_else(|| died_at.clone());
    // The busiest other place on the map; the same function if there is
    // none (two goroutines running one method).
    let other = map
        .sites
        .iter()
        .find(|site| site.function != died_at.function)
        .unwrap_or(&dying)
        .clone();
    let mut finding = Finding {
        kind: RACE.to_owned(),
        severity: "critical".to_owned(),
        message: format!(
            "the Go runtime killed the program with \"{fatal}\" in {} on map {}, which {} also uses: \
             two goroutines used it at once (contend's probes did not catch that collision \
             themselves); guard the map with a sync.Mutex or use sync.Map",
            dying.function, map.id, other.function
        ),
        subject: map.id.clone(),
        sites: vec![dying.clone(), other.clone()],
        count: 1,
        accesses: vec![access(died_doing, dying), access(other_doing, other)],
        ..Finding::default()
    };
    super::build::add_advice(&mut finding, advice::guard(1, map.go_type.as_deref()));
    Some(finding)
}

/// What the goroutine that died and the other one were doing, from the
/// runtime's words: readers and iterators die of a writer, and of two
/// writers either may.
fn ops_of(fatal: &str) -> Option<(&'static str, &'static str)> {
    match fatal.strip_prefix("fatal error: ")? {
        "concurrent map writes" => Some(("write", "write")),
        "concurrent map read and map write" => Some(("read", "write")),
        "concurrent map iteration and map write" => Some(("iterate", "write")),
        _ => None,
    }
}

/// The traced map `function` used most.
fn map_used_by<'a>(maps: &'a [MapReport], function: &str) -> Option<&'a MapReport> {
    maps.iter()
        .filter_map(|map| Some((map, site_in(map, function)?.ops)))
        .max_by_key(|&(_, ops)| ops)
        .map(|(map, _)| map)
}

fn site_in(map: &MapReport, function: &str) -> Option<Site> {
    map.sites
        .iter()
        .find(|site| site.function == function)
        .cloned()
}

fn access(op: &str, site: Site) -> Access {
    Access {
        op: op.to_owned(),
        key: None,
        goroutine: None,
        site: Some(site),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::schema::{Ops, SCHEMA_V1, Target, Tracer, Window};

    fn site(function: &str, line: u32, ops: u64) -> Site {
        Site {
            function: function.to_owned(),
            file: "/src/main.go".to_owned(),
            line,
            ops,
        }
    }

    fn export_with_cache_map() -> Export {
        Export {
            schema: SCHEMA_V1.to_owned(),
            target: Target {
                pid: 7,
                exe: "/src/earlyrace".to_owned(),
                language: "go".to_owned(),
                go_version: None,
                ..Target::default()
            },
            window: Window {
                start_unix_ns: 0,
                duration_ns: 1,
            },
            tracer: Tracer {
                events: 0,
                maps_seen: 1,
                exact: true,
                ..Tracer::default()
            },
            maps: vec![MapReport {
                id: "0xc000070060".to_owned(),
                ops: Ops {
                    write: 711,
                    delete: 1,
                    ..Ops::default()
                },
                sites: vec![
                    site("main.(*Cache).Set", 29, 711),
                    site("main.(*Cache).Delete", 34, 1),
                ],
                ..MapReport::default()
            }],
            locks: Vec::new(),
            findings: Vec::new(),
        }
    }

    fn died_of(fatal: &str) -> Exit {
        Exit {
            at_unix_ns: 1,
            code: Some(2),
            signal: None,
            fatal_error: Some(fatal.to_owned()),
            fatal_site: Some(site("main.(*Cache).Delete", 34, 0)),
        }
    }

    #[test]
    fn a_map_race_the_runtime_caught_names_both_sides() {
        let mut export = export_with_cache_map();
        record_exit(&mut export, died_of("fatal error: concurrent map writes"));
        assert_eq!(
            export.target.exit.as_ref().and_then(|exit| exit.code),
            Some(2)
        );
        let race = &export.findings[0];
        assert_eq!(
            (race.kind.as_str(), race.subject.as_str()),
            (RACE, "0xc000070060")
        );
        let sides: Vec<(&str, &str)> = race
            .accesses
            .iter()
            .map(|access| {
                let function = access
                    .site
                    .as_ref()
                    .map_or("", |site| site.function.as_str());
                (access.op.as_str(), function)
            })
            .collect();
        assert_eq!(
            sides,
            [
                ("write", "main.(*Cache).Delete"),
                ("write", "main.(*Cache).Set")
            ]
        );
    }

    #[test]
    fn a_race_contend_saw_is_not_reported_twice() {
        let mut export = export_with_cache_map();
        let seen = Finding {
            kind: RACE.to_owned(),
            severity: "critical".to_owned(),
            message: "seen".to_owned(),
            subject: "0xc000070060".to_owned(),
            sites: Vec::new(),
            count: 3,
            accesses: Vec::new(),
            ..Finding::default()
        };
        export.findings.push(seen.clone());
        record_exit(&mut export, died_of("fatal error: concurrent map writes"));
        assert_eq!(export.findings, [seen]);
    }

    #[test]
    fn other_deaths_are_no_race() {
        let mut export = export_with_cache_map();
        record_exit(&mut export, died_of("fatal error: out of memory"));
        assert!(export.findings.is_empty());
        assert!(export.target.exit.is_some());
    }
}
