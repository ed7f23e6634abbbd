//! Actions change the state; the few that need the outside world (quit,
//! write a file) come back as an [`Effect`] for the run loop to carry out.

use super::{input::Action, state::State};

/// What the run loop must do after an action.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    None,
    Quit,
    /// Write the export on screen to a file.
    WriteExport,
}

pub fn update(state: &mut State, action: Action) -> Effect {
    match action {
        Action::Quit => return Effect::Quit,
        Action::WriteExport => return Effect::WriteExport,
        Action::CycleView(by) => state.cycle_view(by),
        Action::SwitchTo(view) => state.switch_to(view),
        Action::Move(by) => state.move_selection(by),
        Action::First => state.move_selection(isize::MIN),
        Action::Last => state.move_selection(isize::MAX),
        Action::DrillDown => state.drill_down(),
        Action::BackOut => state.back_out(),
        Action::CycleSort => state.cycle_sort(),
        Action::StartFilter => state.start_filter(),
        Action::TypeFilter(character) => state.type_filter(character),
        Action::EraseFilter => state.erase_filter(),
        Action::KeepFilter => state.keep_filter(),
        Action::TogglePause => state.toggle_pause(),
        Action::ToggleHelp => state.toggle_help(),
        Action::ToggleDropsByCpu => state.toggle_drops_by_cpu(),
    }
    Effect::None
}

#[cfg(test)]
mod tests {
    use std::{sync::Arc, time::Duration};

    use super::*;
    use crate::dashboard::{
        fixture::{self, END_SECONDS},
        state::{View, rows::MapSort},
    };

    fn selected_map(state: &State) -> String {
        let row = state.selected_map().expect("a map is selected");
        row.map.id.clone()
    }

    fn map_order(state: &State) -> Vec<String> {
        let rows = state.map_rows().rows;
        rows.iter().map(|row| row.map.id.clone()).collect()
    }

    fn act(state: &mut State, actions: &[Action]) {
        for action in actions {
            assert_eq!(update(state, *action), Effect::None, "{action:?}");
        }
    }

    #[test]
    fn quitting_and_exporting_are_left_to_the_run_loop() {
        let mut state = fixture::live_state();
        assert_eq!(update(&mut state, Action::Quit), Effect::Quit);
        assert_eq!(update(&mut state, Action::WriteExport), Effect::WriteExport);
    }

    #[test]
    fn selection_moves_and_stops_at_the_ends() {
        let mut state = fixture::live_state();
        assert_eq!(selected_map(&state), "0xc000123000", "the busiest first");
        act(&mut state, &[Action::Move(1)]);
        assert_eq!(selected_map(&state), "0xc000200000");
        act(&mut state, &[Action::Move(5)]);
        assert_eq!(selected_map(&state), "0xc000300000", "stops at the last");
        act(&mut state, &[Action::First]);
        assert_eq!(selected_map(&state), "0xc000123000");
        act(&mut state, &[Action::Move(-1)]);
        assert_eq!(selected_map(&state), "0xc000123000", "stops at the first");
        act(&mut state, &[Action::Move(1), Action::Last]);
        assert_eq!(selected_map(&state), "0xc000300000", "End from the middle");
    }

    #[test]
    fn the_selection_follows_its_map_when_the_order_changes() {
        let mut state = fixture::live_state();
        act(&mut state, &[Action::Last]);
        assert_eq!(selected_map(&state), "0xc000300000");
        act(&mut state, &[Action::CycleSort, Action::CycleSort]);
        assert_eq!(state.map_sort(), MapSort::Goroutines);
        assert_eq!(
            map_order(&state),
            ["0xc000123000", "0xc000200000", "0xc000300000"]
        );
        act(&mut state, &[Action::CycleSort]);
        assert_eq!(state.map_sort(), MapSort::Address);
        assert_eq!(selected_map(&state), "0xc000300000");
    }

    #[test]
    fn maps_sort_by_recent_rate_not_by_total() {
        // The cart map is busier than the stock map now, though the stock
        // map has done far more since tracing began.
        let mut state = State::live(Arc::new(fixture::shop_at(0)));
        let mut earlier = fixture::shop_at(10);
        let mut later = fixture::shop_at(11);
        earlier.maps[1].ops.read = 0;
        later.maps[1].ops.read = 100_000;
        state.apply(Arc::new(earlier));
        state.apply(Arc::new(later));
        assert_eq!(map_order(&state)[0], "0xc000200000");
        act(&mut state, &[Action::CycleSort]);
        assert_eq!(state.map_sort(), MapSort::Total);
        assert_eq!(map_order(&state)[0], "0xc000123000");
    }

    #[test]
    fn a_filter_matches_keys_and_functions() {
        let mut state = fixture::live_state();
        act(&mut state, &[Action::StartFilter]);
        for character in "USER-1".chars() {
            act(&mut state, &[Action::TypeFilter(character)]);
        }
        act(&mut state, &[Action::KeepFilter]);
        assert_eq!(map_order(&state), ["0xc000200000"], "by key, any case");
        assert!(!state.filter().editing);

        act(&mut state, &[Action::StartFilter]);
        for _ in 0..6 {
            act(&mut state, &[Action::EraseFilter]);
        }
        for character in "report".chars() {
            act(&mut state, &[Action::TypeFilter(character)]);
        }
        assert_eq!(map_order(&state), ["0xc000300000"], "by function");
        act(&mut state, &[Action::SwitchTo(View::Locks)]);
        assert!(state.lock_rows().rows.is_empty(), "no lock has `report`");
        act(&mut state, &[Action::BackOut]);
        assert_eq!(state.filter().text, "", "Esc clears a filter being typed");
        assert_eq!(state.lock_rows().rows.len(), 3);
    }

    #[test]
    fn enter_drills_into_the_selected_map_and_esc_backs_out() {
        let mut state = fixture::live_state();
        act(&mut state, &[Action::Move(1), Action::DrillDown]);
        assert!(state.drilled());
        assert_eq!(selected_map(&state), "0xc000200000");
        act(&mut state, &[Action::Move(1)]);
        assert_eq!(
            selected_map(&state),
            "0xc000300000",
            "the next map's detail"
        );
        act(&mut state, &[Action::BackOut]);
        assert!(!state.drilled());

        act(
            &mut state,
            &[Action::SwitchTo(View::Locks), Action::DrillDown],
        );
        assert!(!state.drilled(), "locks show their detail already");
    }

    #[test]
    fn esc_closes_the_innermost_thing_first() {
        let mut state = fixture::live_state();
        act(&mut state, &[Action::StartFilter, Action::TypeFilter('s')]);
        act(
            &mut state,
            &[Action::KeepFilter, Action::DrillDown, Action::ToggleHelp],
        );
        assert!(state.help() && state.drilled());
        act(&mut state, &[Action::BackOut]);
        assert!(!state.help() && state.drilled(), "help first");
        act(&mut state, &[Action::BackOut]);
        assert!(
            !state.drilled() && state.filter().text == "s",
            "then the detail"
        );
        act(&mut state, &[Action::BackOut]);
        assert_eq!(state.filter().text, "", "then the filter");
    }

    #[test]
    fn pause_freezes_the_display_while_snapshots_keep_coming() {
        let mut state = fixture::live_state();
        act(&mut state, &[Action::TogglePause]);
        let frozen = state.map_rate("0xc000123000", Duration::from_secs(1));
        for second in END_SECONDS + 1..END_SECONDS + 5 {
            state.apply(Arc::new(fixture::shop_at(second)));
        }
        assert_eq!(state.shown_at_ns(), END_SECONDS * fixture::SECOND);
        assert_eq!(
            state.map_rate("0xc000123000", Duration::from_secs(1)),
            frozen
        );
        act(&mut state, &[Action::TogglePause]);
        assert_eq!(state.shown_at_ns(), (END_SECONDS + 4) * fixture::SECOND);
    }

    #[test]
    fn views_cycle_both_ways() {
        let mut state = fixture::live_state();
        act(&mut state, &[Action::CycleView(-1)]);
        assert_eq!(state.view(), View::Probes);
        act(&mut state, &[Action::CycleView(1), Action::CycleView(1)]);
        assert_eq!(state.view(), View::Locks);
    }
}
