//! Who is traced, how tracing goes, and what it costs the target.

use ratatui::{
    Frame,
    layout::Rect,
    text::{Line, Span},
    widgets::Paragraph,
};

use super::{
    is_wide,
    text::{self, clock, percent, shown, si, thousands},
};
use crate::{
    dashboard::state::{LAST_SECOND, LAST_TEN_SECONDS, Source, State},
    export::{Export, caveats::RanDifferently, report},
};

/// Lines the header takes.
pub fn height(state: &State) -> u16 {
    2 + u16::from(state.ended().is_some())
        + u16::from(sampling(state.shown()).is_some())
        + u16::from(RanDifferently::of(state.shown()).is_some())
        + u16::from(state.drops_by_cpu())
}

pub fn draw(frame: &mut Frame, area: Rect, state: &State) {
    let export = state.shown();
    let mut lines = vec![identity(state), throughput(state, is_wide(area))];
    if let Some(ended) = state.ended() {
        lines.push(Line::styled(
            format!("{ended}: the numbers are final; e saves them, q quits"),
            text::critical(),
        ));
    }
    lines.extend(sampling(export));
    lines.extend(RanDifferently::of(export).map(ran_differently));
    if state.drops_by_cpu() {
        lines.push(drops_by_cpu(export));
    }
    frame.render_widget(Paragraph::new(lines), area);
}

/// `● live 1m 23s │ PID 4242 · /srv/shop · go1.27.3`
fn identity(state: &State) -> Line<'static> {
    let export = state.shown();
    let traced = clock(export.window.duration_ns);
    let badge = match (state.source(), state.ended(), state.paused()) {
        (Source::Recording(file), _, _) => Span::styled(
            format!("recording {} · {traced}", shown(file)),
            text::heading(),
        ),
        (Source::Live, Some(_), _) => Span::styled(format!("■ ended · {traced}"), text::critical()),
        (Source::Live, None, true) => {
            Span::styled(format!("❚❚ paused at {traced}"), text::warning())
        }
        (Source::Live, None, false) => Span::styled(format!("● tracing {traced}"), text::good()),
    };
    let target = &export.target;
    let version = target.go_version.as_deref().unwrap_or(&target.language);
    Line::from(vec![
        badge,
        Span::styled(" │ ", text::dim()),
        Span::styled(format!("PID {}", target.pid), text::heading()),
        Span::raw(format!(" · {} · {}", shown(&target.exe), shown(version))),
    ])
}

/// `events 44.9k/s · 3,727,083 total · dropped 12 · probes 3 of 5 attached`
fn throughput(state: &State, wide: bool) -> Line<'static> {
    let export = state.shown();
    let tracer = &export.tracer;
    let mut spans = vec![Span::raw(events(state, wide))];
    spans.push(Span::raw(format!(
        " · {} total · ",
        thousands(tracer.events)
    )));
    // A recording's "last ten seconds" would be its whole window.
    let recently = match state.rates_are_averages() {
        true => 0,
        false => state.recently_dropped(LAST_TEN_SECONDS).unwrap_or(0),
    };
    let dropped = format!("dropped {}", thousands(tracer.dropped));
    spans.push(match (tracer.dropped, recently) {
        (0, _) => Span::raw(dropped),
        (_, 0) => Span::styled(dropped, text::warning()),
        _ => Span::styled(
            format!("{dropped} (+{} in 10 s)", thousands(recently)),
            text::critical(),
        ),
    });
    spans.push(Span::raw(format!(" · {}", probes(export, wide))));
    Line::from(spans)
}

fn events(state: &State, wide: bool) -> String {
    let rate = |span| state.events_rate(span).map_or_else(|| "-".to_owned(), si);
    if state.rates_are_averages() {
        format!("events {}/s on average", rate(LAST_SECOND))
    } else if wide {
        format!(
            "events {}/s (10 s: {}/s)",
            rate(LAST_SECOND),
            rate(LAST_TEN_SECONDS)
        )
    } else {
        format!("events {}/s", rate(LAST_SECOND))
    }
}

/// `probes 3 of 5 attached`, and if wide, `(1 not needed, 1 failed)`:
/// the probes view says more.
fn probes(export: &Export, wide: bool) -> String {
    let probes = &export.tracer.probes;
    let attached = probes.iter().filter(|probe| probe.attached).count();
    let unused = probes.iter().filter(|probe| probe.unused).count();
    let failed = probes.len() - attached - unused;
    let mut skipped = Vec::new();
    if unused > 0 {
        skipped.push(format!("{unused} not needed"));
    }
    if failed > 0 {
        skipped.push(format!("{failed} failed"));
    }
    let mut text = format!("probes {attached} of {} attached", probes.len());
    if wide && !skipped.is_empty() {
        text.push_str(&format!(" ({})", skipped.join(", ")));
    }
    text
}

/// What sampling did to the figures: the budget, the estimated slowdown
/// of the target, and how much of the window the probes counted; or, with
/// `--exact`, that the tracer's own effect is in the figures.
fn sampling(export: &Export) -> Option<Line<'static>> {
    let tracer = &export.tracer;
    let mut parts = Vec::new();
    if tracer.exact {
        parts.push("exact: the figures include the tracer's own effect".to_owned());
    }
    if let Some(budget) = tracer.max_overhead {
        parts.push(format!("budget {}", percent(budget)));
    }
    if let Some(slowdown) = tracer.estimated_overhead {
        parts.push(format!("slowdown ~{}", percent(slowdown)));
    }
    if let Some(coverage) = coverage(export) {
        parts.push(format!(
            "probes counted {coverage} of the time · ~ estimate"
        ));
    }
    (!parts.is_empty()).then(|| Line::styled(parts.join(" · "), text::warning()))
}

/// Why map rates may be off; the report says it at length.
fn ran_differently(differently: RanDifferently) -> Line<'static> {
    let factor = differently.factor();
    let line = match differently {
        RanDifferently::StayedAwake { .. } => {
            format!(
                "⚠ map rates may read high: the target slept {factor:.0}× less often with probes in"
            )
        }
        RanDifferently::BusierOnItsOwn { .. } => {
            format!(
                "⚠ map rates may read high: the target used {factor:.1}× its own CPU with probes in"
            )
        }
        RanDifferently::LostInProbeCost { .. } => format!(
            "⚠ map rates are rough: probes took {} of the target's CPU while in",
            percent(factor)
        ),
    };
    Line::styled(line, text::warning())
}

/// The share of the window the attached probes counted: `62%`, or a range.
fn coverage(export: &Export) -> Option<String> {
    let coverages: Vec<f64> = (export.tracer.probes.iter())
        .filter_map(|probe| probe.coverage)
        .collect();
    let least = coverages.iter().copied().reduce(f64::min)?;
    let most = coverages.iter().copied().reduce(f64::max)?;
    Some(if percent(least) == percent(most) {
        percent(least)
    } else {
        format!("{}–{}", percent(least), percent(most))
    })
}

/// `dropped by CPU: CPU 0: 12` (the `d` key).
fn drops_by_cpu(export: &Export) -> Line<'static> {
    let cpus = report::cpus_that_dropped(&export.tracer.dropped_by_cpu);
    if cpus.is_empty() {
        Line::styled("dropped by CPU: none dropped", text::dim())
    } else {
        Line::raw(format!("dropped by CPU: {}", cpus.join(", ")))
    }
}
