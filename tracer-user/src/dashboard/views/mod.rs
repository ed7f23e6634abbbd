//! Drawing: one module per part of the screen, each a function of a
//! `&State` that never changes it. Every string from the export is drawn
//! through [`text::shown`], which escapes control characters.

pub mod findings;
pub mod footer;
pub mod header;
pub mod help;
pub mod locks;
pub mod map_detail;
pub mod maps;
pub mod probes;
pub mod tabs;
pub mod text;

use ratatui::{
    Frame,
    layout::{Constraint, Layout, Rect},
};

use super::state::{State, View};

/// From this width on, tables show every column: the maps' widest row
/// needs about 140.
pub const WIDE: u16 = 140;

pub fn draw(frame: &mut Frame, state: &State) {
    let [header_area, tabs_area, body, status_area, footer_area] = Layout::vertical([
        Constraint::Length(header::height(state)),
        Constraint::Length(1),
        Constraint::Min(0),
        Constraint::Length(footer::status_height(state)),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    header::draw(frame, header_area, state);
    tabs::draw(frame, tabs_area, state);
    match state.view() {
        View::Maps if state.drilled() => map_detail::draw(frame, body, state),
        View::Maps => maps::draw(frame, body, state),
        View::Locks => locks::draw(frame, body, state),
        View::Findings => findings::draw(frame, body, state),
        View::Probes => probes::draw(frame, body, state),
    }
    footer::draw_status(frame, status_area, state);
    footer::draw(frame, footer_area, state);
    if state.help() {
        help::draw(frame, frame.area(), state);
    }
}

/// Whether `area` has room for every column.
fn is_wide(area: Rect) -> bool {
    area.width >= WIDE
}

#[cfg(test)]
mod tests {
    use std::{sync::Arc, time::Instant};

    use ratatui::{Terminal, backend::TestBackend};

    use super::*;
    use crate::dashboard::{
        fixture::{self, END_SECONDS},
        input::Action,
        update::update,
    };

    const SMALL: (u16, u16) = (80, 24);
    const LARGE: (u16, u16) = (160, 48);

    fn render(state: &State, (width, height): (u16, u16)) -> Terminal<TestBackend> {
        let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("test terminal");
        terminal
            .draw(|frame| draw(frame, state))
            .expect("draw on the test terminal");
        terminal
    }

    /// Snapshots `state` at both sizes, as `<name>_80x24` and `<name>_160x48`.
    fn snapshot(name: &str, state: &State) {
        for size in [SMALL, LARGE] {
            let terminal = render(state, size);
            assert_printable(name, &terminal);
            insta::assert_snapshot!(format!("{name}_{}x{}", size.0, size.1), terminal.backend());
        }
    }

    /// No cell holds a control character: the fixture's key with an
    /// escape sequence in it must arrive escaped.
    fn assert_printable(name: &str, terminal: &Terminal<TestBackend>) {
        let buffer = terminal.backend().buffer();
        for cell in &buffer.content {
            assert!(
                !cell.symbol().chars().any(char::is_control),
                "{name}: a control character reached the screen: {:?}",
                cell.symbol()
            );
        }
    }

    fn live(actions: &[Action]) -> State {
        let mut state = fixture::live_state();
        for action in actions {
            update(&mut state, *action);
        }
        state
    }

    #[test]
    fn maps() {
        snapshot("maps", &live(&[]));
    }

    #[test]
    fn map_detail() {
        snapshot("map_detail", &live(&[Action::DrillDown]));
    }

    #[test]
    fn map_detail_escapes_a_key_with_an_escape_sequence() {
        let terminal = render(&live(&[Action::DrillDown]), LARGE);
        let screen = terminal.backend().to_string();
        assert!(screen.contains(r"sku-\u{1b}[2J\u{7}evil"), "{screen}");
    }

    #[test]
    fn map_detail_says_when_keys_are_spread() {
        let mut state = State::live(Arc::new({
            let mut export = fixture::shop_at(END_SECONDS);
            export.maps[0].top_keys.clear();
            export.maps[0].keys_spread = true;
            export
        }));
        update(&mut state, Action::DrillDown);
        let screen = render(&state, LARGE).backend().to_string();
        assert!(
            screen.contains("no key above 0.1%: keys are spread"),
            "{screen}"
        );
    }

    #[test]
    fn addresses_are_whole_at_every_width() {
        let maps = live(&[]);
        let locks = live(&[Action::SwitchTo(View::Locks)]);
        for width in (80..=200).step_by(5) {
            let screen = render(&maps, (width, 30)).backend().to_string();
            assert!(
                screen.contains("0xc000200000"),
                "maps at {width}:\n{screen}"
            );
            let screen = render(&locks, (width, 30)).backend().to_string();
            assert!(
                screen.contains("0xc000789000"),
                "locks at {width}:\n{screen}"
            );
        }
    }

    #[test]
    fn locks() {
        snapshot("locks", &live(&[Action::SwitchTo(View::Locks)]));
    }

    #[test]
    fn findings() {
        snapshot("findings", &live(&[Action::SwitchTo(View::Findings)]));
    }

    #[test]
    fn probes() {
        snapshot("probes", &live(&[Action::SwitchTo(View::Probes)]));
    }

    #[test]
    fn help() {
        snapshot("help", &live(&[Action::ToggleHelp]));
    }

    #[test]
    fn paused_with_drops_by_cpu_and_a_filter_being_typed() {
        let typed = [
            Action::TogglePause,
            Action::ToggleDropsByCpu,
            Action::StartFilter,
            Action::TypeFilter('s'),
            Action::TypeFilter('k'),
            Action::TypeFilter('u'),
        ];
        snapshot("paused_filtered", &live(&typed));
    }

    #[test]
    fn sampled_figures_are_marked_as_estimates() {
        let mut state = fixture::sampled_live_state();
        state.apply(Arc::new(fixture::sampled(fixture::shop_at(
            END_SECONDS + 1,
        ))));
        snapshot("sampled", &state);
        update(&mut state, Action::DrillDown);
        snapshot("sampled_map_detail", &state);
    }

    #[test]
    fn the_end_of_the_target_and_a_status_message() {
        let mut state = live(&[]);
        let how = "the target exited with status 2".to_owned();
        state.end(how, Some(fixture::shop_at(END_SECONDS + 1)));
        state.set_status(
            "saved contend-4242-1763780084.json".to_owned(),
            false,
            Instant::now(),
        );
        snapshot("ended", &state);
    }

    #[test]
    fn a_race_the_program_died_of_says_so_beside_the_finding() {
        let mut export = fixture::shop_at(END_SECONDS);
        export.target.exit = Some(crate::export::schema::Exit {
            at_unix_ns: 1,
            code: Some(2),
            fatal_error: Some("fatal error: concurrent map writes".to_owned()),
            ..Default::default()
        });
        let mut state = State::recording(export, "crashed.json".to_owned());
        update(&mut state, Action::SwitchTo(View::Findings));
        let screen = render(&state, LARGE).backend().to_string();
        assert!(
            screen
                .contains("confirmed: the program died of \"fatal error: concurrent map writes\""),
            "{screen}"
        );
    }

    #[test]
    fn exact_recordings_say_the_tracer_is_in_the_figures() {
        let mut export = fixture::shop_at(END_SECONDS);
        export.tracer.exact = true;
        let state = State::recording(export, "exact.json".to_owned());
        let screen = render(&state, SMALL).backend().to_string();
        assert!(
            screen.contains("exact: the figures include the tracer's own effect"),
            "{screen}"
        );
    }

    #[test]
    fn a_recording_from_a_file() {
        let state = State::recording(fixture::shop_at(END_SECONDS), "shop.json".to_owned());
        snapshot("recording", &state);
        let mut locks = state;
        update(&mut locks, Action::SwitchTo(View::Locks));
        snapshot("recording_locks", &locks);
    }

    #[test]
    fn nothing_traced_yet() {
        let state = State::live(Arc::new(fixture::shop_at(0)));
        snapshot("empty", &state);
    }
}
