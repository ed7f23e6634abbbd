//! Keys to actions. What a key means depends only on whether a filter is
//! being typed or the help is open, so this is a pure function.

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::state::View;

/// Rows PageUp and PageDown move.
pub const PAGE: isize = 10;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Quit,
    /// Tab (1) and Shift-Tab (-1).
    CycleView(isize),
    SwitchTo(View),
    /// Rows to move the selection by.
    Move(isize),
    First,
    Last,
    DrillDown,
    BackOut,
    CycleSort,
    StartFilter,
    TypeFilter(char),
    EraseFilter,
    KeepFilter,
    TogglePause,
    WriteExport,
    ToggleHelp,
    ToggleDropsByCpu,
}

/// What the keyboard is doing besides commanding.
#[derive(Clone, Copy, Debug, Default)]
pub struct Mode {
    pub typing_filter: bool,
    pub help_open: bool,
}

pub fn action(key: KeyEvent, mode: Mode) -> Option<Action> {
    if key.kind == KeyEventKind::Release {
        return None;
    }
    if key.modifiers.contains(KeyModifiers::CONTROL) {
        return (key.code == KeyCode::Char('c')).then_some(Action::Quit);
    }
    if mode.typing_filter {
        return filter_action(key.code);
    }
    if mode.help_open {
        // Any key closes the help; q still quits.
        return Some(match key.code {
            KeyCode::Char('q') => Action::Quit,
            _ => Action::ToggleHelp,
        });
    }
    command_action(key.code)
}

fn filter_action(code: KeyCode) -> Option<Action> {
    Some(match code {
        KeyCode::Char(character) => Action::TypeFilter(character),
        KeyCode::Backspace => Action::EraseFilter,
        KeyCode::Enter => Action::KeepFilter,
        KeyCode::Esc => Action::BackOut,
        KeyCode::Up => Action::Move(-1),
        KeyCode::Down => Action::Move(1),
        _ => return None,
    })
}

fn command_action(code: KeyCode) -> Option<Action> {
    Some(match code {
        KeyCode::Char('q') => Action::Quit,
        KeyCode::Tab => Action::CycleView(1),
        KeyCode::BackTab => Action::CycleView(-1),
        KeyCode::Char(digit @ '1'..='4') => {
            let index = digit as usize - '1' as usize;
            Action::SwitchTo(View::ALL[index])
        }
        KeyCode::Up | KeyCode::Char('k') => Action::Move(-1),
        KeyCode::Down | KeyCode::Char('j') => Action::Move(1),
        KeyCode::PageUp => Action::Move(-PAGE),
        KeyCode::PageDown => Action::Move(PAGE),
        KeyCode::Home | KeyCode::Char('g') => Action::First,
        KeyCode::End | KeyCode::Char('G') => Action::Last,
        KeyCode::Enter => Action::DrillDown,
        KeyCode::Esc => Action::BackOut,
        KeyCode::Char('s') => Action::CycleSort,
        KeyCode::Char('/') => Action::StartFilter,
        KeyCode::Char('p') => Action::TogglePause,
        KeyCode::Char('e') => Action::WriteExport,
        KeyCode::Char('?') => Action::ToggleHelp,
        KeyCode::Char('d') => Action::ToggleDropsByCpu,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn press(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    #[test]
    fn keys_command_the_dashboard() {
        let mode = Mode::default();
        let cases = [
            (KeyCode::Char('q'), Action::Quit),
            (KeyCode::Tab, Action::CycleView(1)),
            (KeyCode::BackTab, Action::CycleView(-1)),
            (KeyCode::Char('3'), Action::SwitchTo(View::Findings)),
            (KeyCode::Char('j'), Action::Move(1)),
            (KeyCode::Up, Action::Move(-1)),
            (KeyCode::PageDown, Action::Move(PAGE)),
            (KeyCode::Enter, Action::DrillDown),
            (KeyCode::Esc, Action::BackOut),
            (KeyCode::Char('s'), Action::CycleSort),
            (KeyCode::Char('/'), Action::StartFilter),
            (KeyCode::Char('p'), Action::TogglePause),
            (KeyCode::Char('e'), Action::WriteExport),
            (KeyCode::Char('?'), Action::ToggleHelp),
            (KeyCode::Char('d'), Action::ToggleDropsByCpu),
        ];
        for (code, expected) in cases {
            assert_eq!(action(press(code), mode), Some(expected), "{code:?}");
        }
        assert_eq!(action(press(KeyCode::Char('x')), mode), None);
    }

    #[test]
    fn ctrl_c_quits_whatever_is_being_typed() {
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        let typing = Mode {
            typing_filter: true,
            help_open: false,
        };
        assert_eq!(action(ctrl_c, typing), Some(Action::Quit));
        assert_eq!(action(ctrl_c, Mode::default()), Some(Action::Quit));
    }

    #[test]
    fn a_filter_takes_the_letters_that_are_commands_otherwise() {
        let typing = Mode {
            typing_filter: true,
            help_open: false,
        };
        assert_eq!(
            action(press(KeyCode::Char('q')), typing),
            Some(Action::TypeFilter('q'))
        );
        assert_eq!(
            action(press(KeyCode::Backspace), typing),
            Some(Action::EraseFilter)
        );
        assert_eq!(
            action(press(KeyCode::Enter), typing),
            Some(Action::KeepFilter)
        );
    }

    #[test]
    fn any_key_closes_the_help_but_q_quits() {
        let help = Mode {
            typing_filter: false,
            help_open: true,
        };
        assert_eq!(
            action(press(KeyCode::Char('j')), help),
            Some(Action::ToggleHelp)
        );
        assert_eq!(action(press(KeyCode::Char('q')), help), Some(Action::Quit));
    }
}
