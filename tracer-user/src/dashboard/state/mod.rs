//! Everything the dashboard shows and remembers, and nothing that does I/O:
//! snapshots as they arrive, recent rates (`history`), when findings were
//! first seen (`findings`), the lists as filtered and sorted (`rows`), and
//! the user's place in them. Views draw from a `&State`; keys change it
//! through `update`.

pub mod findings;
pub mod history;
pub mod rows;

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use self::{
    findings::{FindingKey, FirstSeen},
    history::{Change, History, LockId, OpsRate},
    rows::{
        FindingRow, FindingSort, LockRow, LockSort, MapRow, MapSort, Rows, finding_texts,
        lock_texts, map_texts, matches, probe_texts, with_selection,
    },
};
use crate::export::{Export, schema::Probe};

/// The short window rates are shown over, and the longer, steadier one.
pub const LAST_SECOND: Duration = Duration::from_secs(1);
pub const LAST_TEN_SECONDS: Duration = Duration::from_secs(10);
/// Seconds of history a map's sparkline shows.
pub const SPARKLINE_SECONDS: u64 = 60;
/// How long a status message stays.
const STATUS_FOR: Duration = Duration::from_secs(8);

/// The dashboard's views, in tab order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum View {
    #[default]
    Maps,
    Locks,
    Findings,
    Probes,
}

impl View {
    pub const ALL: [Self; 4] = [Self::Maps, Self::Locks, Self::Findings, Self::Probes];

    fn index(self) -> usize {
        Self::ALL.iter().position(|view| *view == self).unwrap_or(0)
    }

    fn offset(self, by: isize) -> Self {
        let count = Self::ALL.len() as isize;
        let index = (self.index() as isize + by).rem_euclid(count);
        Self::ALL[index as usize]
    }
}

/// Where the numbers come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A session tracing now.
    Live,
    /// An export read from this file: one snapshot, frozen.
    Recording(String),
}

/// A message in the status line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    pub text: String,
    pub error: bool,
    since: Instant,
}

/// The `/` filter: what was typed, and whether typing goes on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    pub text: String,
    pub editing: bool,
}

#[derive(Debug, Default)]
struct Selection {
    map: Option<String>,
    lock: Option<LockId>,
    finding: Option<FindingKey>,
    probe: Option<String>,
}

#[derive(Debug, Default)]
struct Sorts {
    maps: MapSort,
    locks: LockSort,
    findings: FindingSort,
}

#[derive(Debug)]
pub struct State {
    source: Source,
    /// The newest snapshot.
    latest: Arc<Export>,
    /// The snapshot on screen: the newest, unless paused.
    shown: Arc<Export>,
    history: History,
    first_seen: FirstSeen,
    /// How tracing ended, once it has: the numbers are final.
    ended: Option<String>,
    paused: bool,
    view: View,
    /// The selected map's detail is open.
    drilled: bool,
    help: bool,
    drops_by_cpu: bool,
    selection: Selection,
    sorts: Sorts,
    filter: Filter,
    status: Option<Status>,
}

impl State {
    /// A dashboard on a session, starting from its first snapshot.
    pub fn live(first: Arc<Export>) -> Self {
        Self::new(Source::Live, first)
    }

    /// A dashboard on a saved export.
    pub fn recording(export: Export, file: String) -> Self {
        Self::new(Source::Recording(file), Arc::new(export))
    }

    fn new(source: Source, first: Arc<Export>) -> Self {
        let mut state = Self {
            source,
            latest: Arc::clone(&first),
            shown: Arc::clone(&first),
            history: History::default(),
            first_seen: FirstSeen::default(),
            ended: None,
            paused: false,
            view: View::default(),
            drilled: false,
            help: false,
            drops_by_cpu: false,
            selection: Selection::default(),
            sorts: Sorts::default(),
            filter: Filter::default(),
            status: None,
        };
        state.record(&first);
        state
    }

    /// Takes a new snapshot: its totals go into the history and its
    /// findings are noted whether or not the display is paused; it is shown
    /// unless paused. Nothing changes once tracing has ended.
    pub fn apply(&mut self, snapshot: Arc<Export>) {
        if self.ended.is_some() {
            return;
        }
        self.record(&snapshot);
        if !self.paused {
            self.shown = Arc::clone(&snapshot);
        }
        self.latest = snapshot;
    }

    fn record(&mut self, snapshot: &Export) {
        let shown_at = if self.paused {
            self.shown_at_ns()
        } else {
            snapshot.window.duration_ns
        };
        self.history.push(snapshot, shown_at);
        self.first_seen.note(snapshot);
    }

    /// Tracing ended (`how`, e.g. "the target exited with status 0"): shows
    /// the final export, if there is one, and keeps it.
    pub fn end(&mut self, how: String, last: Option<Export>) {
        self.paused = false;
        match last {
            Some(last) => self.apply(Arc::new(last)),
            None => self.shown = Arc::clone(&self.latest),
        }
        self.ended = Some(how);
    }

    /// Lets time pass: status messages expire.
    pub fn tick(&mut self, now: Instant) {
        if (self.status.as_ref())
            .is_some_and(|status| now.duration_since(status.since) > STATUS_FOR)
        {
            self.status = None;
        }
    }

    pub fn set_status(&mut self, text: String, error: bool, now: Instant) {
        self.status = Some(Status {
            text,
            error,
            since: now,
        });
    }

    pub fn source(&self) -> &Source {
        &self.source
    }

    pub fn shown(&self) -> &Arc<Export> {
        &self.shown
    }

    /// When the snapshot on screen was taken, in window time.
    pub fn shown_at_ns(&self) -> u64 {
        self.shown.window.duration_ns
    }

    pub fn ended(&self) -> Option<&str> {
        self.ended.as_deref()
    }

    pub fn paused(&self) -> bool {
        self.paused
    }

    pub fn view(&self) -> View {
        self.view
    }

    pub fn drilled(&self) -> bool {
        self.drilled && self.view == View::Maps
    }

    pub fn help(&self) -> bool {
        self.help
    }

    pub fn drops_by_cpu(&self) -> bool {
        self.drops_by_cpu
    }

    pub fn filter(&self) -> &Filter {
        &self.filter
    }

    pub fn status(&self) -> Option<&Status> {
        self.status.as_ref()
    }

    pub fn map_sort(&self) -> MapSort {
        self.sorts.maps
    }

    pub fn lock_sort(&self) -> LockSort {
        self.sorts.locks
    }

    pub fn finding_sort(&self) -> FindingSort {
        self.sorts.findings
    }

    /// Rates are over recent seconds while tracing, but a recording read
    /// from a file has only one snapshot: its rates are window averages.
    pub fn rates_are_averages(&self) -> bool {
        matches!(self.source, Source::Recording(_))
    }

    pub fn events_rate(&self, span: Duration) -> Option<f64> {
        let change = self.history.events(self.shown_at_ns(), span)?;
        Some(change.per_second())
    }

    /// Events dropped in the last `span`.
    pub fn recently_dropped(&self, span: Duration) -> Option<u64> {
        let Change { newer, older, .. } = self.history.dropped(self.shown_at_ns(), span)?;
        Some(newer.saturating_sub(older))
    }

    pub fn map_rate(&self, id: &str, span: Duration) -> Option<OpsRate> {
        self.history.map(id, self.shown_at_ns(), span)
    }

    /// A map's operations per second over the last minute, oldest first.
    pub fn map_sparkline(&self, id: &str) -> Vec<u64> {
        (self.history).map_per_second(id, self.shown_at_ns(), SPARKLINE_SECONDS)
    }

    fn lock_rate(&self, lock: &LockId, span: Duration) -> Option<f64> {
        let change = self.history.lock(lock, self.shown_at_ns(), span)?;
        Some(change.waits_per_second())
    }

    pub fn map_rows(&self) -> Rows<MapRow<'_>> {
        let mut rows: Vec<MapRow<'_>> = (self.shown.maps.iter())
            .filter(|map| matches(&self.filter.text, map_texts(map)))
            .map(|map| MapRow {
                map,
                last_second: self.map_rate(&map.id, LAST_SECOND),
                last_ten: self.map_rate(&map.id, LAST_TEN_SECONDS),
            })
            .collect();
        rows::sort_maps(&mut rows, self.sorts.maps);
        with_selection(rows, self.selection.map.as_ref(), |row| row.map.id.clone())
    }

    /// The map whose detail is open (or would open).
    pub fn selected_map(&self) -> Option<MapRow<'_>> {
        self.map_rows().selected_row().copied()
    }

    pub fn lock_rows(&self) -> Rows<LockRow<'_>> {
        let mut rows: Vec<LockRow<'_>> = (self.shown.locks.iter())
            .filter(|lock| matches(&self.filter.text, lock_texts(lock)))
            .map(|lock| {
                let id = LockId::of(lock);
                LockRow {
                    lock,
                    last_second: self.lock_rate(&id, LAST_SECOND),
                    last_ten: self.lock_rate(&id, LAST_TEN_SECONDS),
                    id,
                }
            })
            .collect();
        rows::sort_locks(&mut rows, self.sorts.locks);
        with_selection(rows, self.selection.lock.as_ref(), |row| row.id.clone())
    }

    pub fn finding_rows(&self) -> Rows<FindingRow<'_>> {
        let now = self.shown_at_ns();
        let mut rows: Vec<FindingRow<'_>> = (self.shown.findings.iter())
            .filter(|finding| matches(&self.filter.text, finding_texts(finding)))
            .filter_map(|finding| {
                let key = FindingKey::of(finding);
                let seen = self.first_seen.get(&key)?;
                Some(FindingRow {
                    finding,
                    new: seen.is_new(now),
                    seen,
                    key,
                })
            })
            .collect();
        rows::sort_findings(&mut rows, self.sorts.findings);
        with_selection(rows, self.selection.finding.as_ref(), |row| row.key.clone())
    }

    /// Findings on screen, and how many of them are new.
    pub fn finding_counts(&self) -> (usize, usize) {
        let rows = self.finding_rows().rows;
        (rows.len(), rows.iter().filter(|row| row.new).count())
    }

    pub fn probe_rows(&self) -> Rows<&Probe> {
        let rows: Vec<&Probe> = (self.shown.tracer.probes.iter())
            .filter(|probe| matches(&self.filter.text, probe_texts(probe)))
            .collect();
        with_selection(rows, self.selection.probe.as_ref(), |probe| {
            probe.symbol.clone()
        })
    }

    pub fn switch_to(&mut self, view: View) {
        self.view = view;
        self.drilled = false;
    }

    /// The next view (`by` 1) or the previous one (-1).
    pub fn cycle_view(&mut self, by: isize) {
        self.switch_to(self.view.offset(by));
    }

    /// Moves the selection of the current list by `by` rows, stopping at
    /// its ends. In a map's detail, it moves to the next map.
    pub fn move_selection(&mut self, by: isize) {
        let step = |index: Option<usize>, len: usize| {
            let last = len.saturating_sub(1) as isize;
            (index.unwrap_or(0) as isize)
                .saturating_add(by)
                .clamp(0, last) as usize
        };
        match self.view {
            View::Maps => {
                let rows = self.map_rows();
                let index = step(rows.selected, rows.rows.len());
                self.selection.map = rows.rows.get(index).map(|row| row.map.id.clone());
            }
            View::Locks => {
                let rows = self.lock_rows();
                let index = step(rows.selected, rows.rows.len());
                self.selection.lock = rows.rows.get(index).map(|row| row.id.clone());
            }
            View::Findings => {
                let rows = self.finding_rows();
                let index = step(rows.selected, rows.rows.len());
                self.selection.finding = rows.rows.get(index).map(|row| row.key.clone());
            }
            View::Probes => {
                let rows = self.probe_rows();
                let index = step(rows.selected, rows.rows.len());
                self.selection.probe = rows.rows.get(index).map(|probe| probe.symbol.clone());
            }
        }
    }

    /// Opens the selected map's detail.
    pub fn drill_down(&mut self) {
        if self.view == View::Maps {
            let selected = self.selected_map().map(|row| row.map.id.clone());
            self.drilled = selected.is_some();
            self.selection.map = selected;
        }
    }

    /// Esc: closes help, stops typing a filter, leaves a detail or clears
    /// the filter, whichever is innermost.
    pub fn back_out(&mut self) {
        if self.help {
            self.help = false;
        } else if self.filter.editing {
            self.filter = Filter::default();
        } else if self.drilled {
            self.drilled = false;
        } else {
            self.filter.text.clear();
        }
    }

    pub fn cycle_sort(&mut self) {
        match self.view {
            View::Maps => self.sorts.maps = self.sorts.maps.next(),
            View::Locks => self.sorts.locks = self.sorts.locks.next(),
            View::Findings => self.sorts.findings = self.sorts.findings.next(),
            View::Probes => {}
        }
    }

    pub fn start_filter(&mut self) {
        self.filter.editing = true;
        self.drilled = false;
    }

    pub fn type_filter(&mut self, character: char) {
        self.filter.text.push(character);
    }

    pub fn erase_filter(&mut self) {
        self.filter.text.pop();
    }

    /// Enter: the filter stays, typing stops.
    pub fn keep_filter(&mut self) {
        self.filter.editing = false;
    }

    pub fn toggle_pause(&mut self) {
        if self.ended.is_some() || self.source != Source::Live {
            return;
        }
        self.paused = !self.paused;
        if !self.paused {
            self.shown = Arc::clone(&self.latest);
        }
    }

    pub fn toggle_help(&mut self) {
        self.help = !self.help;
    }

    pub fn toggle_drops_by_cpu(&mut self) {
        self.drops_by_cpu = !self.drops_by_cpu;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dashboard::fixture::{self, END_SECONDS, SECOND};

    fn finding_kinds(state: &State) -> Vec<(String, bool)> {
        let rows = state.finding_rows().rows;
        rows.iter()
            .map(|row| (row.finding.kind.clone(), row.new))
            .collect()
    }

    #[test]
    fn findings_that_appear_while_watching_are_new_and_listed_first() {
        let state = fixture::live_state();
        let newest_first = [
            ("concurrent_map_access".to_owned(), true),
            ("hot_key".to_owned(), false),
            ("lock_convoy".to_owned(), false),
        ];
        assert_eq!(finding_kinds(&state), newest_first);
        assert_eq!(state.finding_counts(), (3, 1));
    }

    #[test]
    fn findings_sort_newest_first_or_by_severity() {
        let mut state = State::live(Arc::new(fixture::shop_at(0)));
        let mut race_only = fixture::shop_at(81);
        race_only
            .findings
            .retain(|finding| finding.kind == "concurrent_map_access");
        state.apply(Arc::new(race_only));
        state.apply(Arc::new(fixture::shop_at(82)));
        let kinds = |state: &State| -> Vec<String> {
            finding_kinds(state)
                .into_iter()
                .map(|(kind, _)| kind)
                .collect()
        };
        assert_eq!(
            kinds(&state),
            ["hot_key", "lock_convoy", "concurrent_map_access"]
        );
        state.switch_to(View::Findings);
        state.cycle_sort();
        assert_eq!(state.finding_sort(), FindingSort::Severity);
        assert_eq!(
            kinds(&state),
            ["concurrent_map_access", "hot_key", "lock_convoy"]
        );
    }

    #[test]
    fn a_finding_stays_the_same_as_its_count_grows_and_stops_being_new() {
        let mut state = fixture::live_state();
        let race = |state: &State| {
            let rows = state.finding_rows().rows;
            let row = rows
                .iter()
                .find(|row| row.finding.kind == "concurrent_map_access");
            row.map(|row| (row.seen.at_ns, row.new, row.finding.count))
        };
        assert_eq!(race(&state), Some((80 * SECOND, true, 53 * 4)));
        for second in END_SECONDS + 1..=90 {
            state.apply(Arc::new(fixture::shop_at(second)));
        }
        assert_eq!(race(&state), Some((80 * SECOND, false, 53 * 11)));
    }

    #[test]
    fn a_recording_is_frozen_its_rates_are_averages_and_nothing_is_new() {
        let mut state = State::recording(fixture::shop_at(END_SECONDS), "shop.json".to_owned());
        assert!(state.rates_are_averages());
        assert_eq!(state.finding_counts(), (3, 0));
        let rate = state
            .map_rate("0xc000123000", LAST_SECOND)
            .map(|rate| rate.read);
        let average = (22_500 * (END_SECONDS + 10)) as f64 / END_SECONDS as f64;
        assert_eq!(
            rate,
            Some(average),
            "the sale's ten doubled seconds included"
        );
        state.toggle_pause();
        assert!(!state.paused(), "nothing to pause");
    }

    #[test]
    fn the_end_shows_the_final_export_and_keeps_it() {
        let mut state = fixture::live_state();
        state.toggle_pause();
        let how = "the target exited with status 0".to_owned();
        state.end(how.clone(), Some(fixture::shop_at(END_SECONDS + 1)));
        assert_eq!(state.ended(), Some(how.as_str()));
        assert!(
            !state.paused(),
            "the final numbers are shown even if paused"
        );
        assert_eq!(state.shown_at_ns(), (END_SECONDS + 1) * SECOND);
        state.apply(Arc::new(fixture::shop_at(END_SECONDS + 2)));
        assert_eq!(state.shown_at_ns(), (END_SECONDS + 1) * SECOND, "frozen");
        state.toggle_pause();
        assert!(!state.paused(), "nothing to pause");
    }

    #[test]
    fn an_ending_without_an_export_shows_the_latest() {
        let mut state = fixture::live_state();
        state.toggle_pause();
        state.apply(Arc::new(fixture::shop_at(END_SECONDS + 1)));
        state.end("tracing stopped".to_owned(), None);
        assert_eq!(state.shown_at_ns(), (END_SECONDS + 1) * SECOND);
    }

    #[test]
    fn status_messages_expire() {
        let mut state = fixture::live_state();
        let now = Instant::now();
        state.set_status("saved contend-4242-1.json".to_owned(), false, now);
        state.tick(now + Duration::from_secs(2));
        assert!(state.status().is_some());
        state.tick(now + STATUS_FOR + Duration::from_secs(1));
        assert!(state.status().is_none());
    }
}
