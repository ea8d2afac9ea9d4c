//! Property: whatever bytes a model answers or an archive holds, nothing drawn carries a
//! control character, so no text can move the cursor, retitle the window or clear the screen.

use std::time::Duration;

use proptest::prelude::*;

use super::keys::{Command, Tab};
use super::state::Reader;
use super::testing::{frame, live_app};
use crate::record::{CallRecord, ErrorClass};

/// Any text, weighted towards what attacks a terminal: ESC, CSI, OSC, BEL, C1 controls, DEL,
/// CR, backspace and bidirectional overrides, among ordinary words.
fn hostile() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("\x1b[2J".to_string()),
        Just("\x1b]0;pwned\x07".to_string()),
        Just("\u{9b}31m".to_string()),
        Just("\r\x08\x7f".to_string()),
        Just("\u{202e}".to_string()),
        Just(" the answer is 4".to_string()),
        any::<char>().prop_map(String::from),
        proptest::collection::vec(any::<u8>(), 0..8)
            .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
    ];
    proptest::collection::vec(piece, 0..12).prop_map(|parts| parts.concat())
}

fn assert_inert(buffer: &ratatui::buffer::Buffer, what: &str) -> Result<(), TestCaseError> {
    for cell in buffer.content() {
        let symbol = cell.symbol();
        prop_assert!(
            !symbol.chars().any(char::is_control),
            "{what}: a control character drawn: {symbol:?}"
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn no_text_draws_a_control_character(outputs in proptest::collection::vec(hostile(), 2..5), error in hostile()) {
        let mut records: Vec<CallRecord> = outputs
            .iter()
            .enumerate()
            .map(|(i, text)| CallRecord::ok("t", "q", i as u32, text, 5.0))
            .collect();
        records.push(CallRecord::failed("t", "q", 99, ErrorClass::Server, &error));
        let mut app = live_app(&["t"], &["q"], &records);
        // Names and paths an opened archive supplies are text from outside too.
        app.identity = Some(error.clone());
        app.archive = Some(error.clone().into());
        app.protocol = error.clone();
        for tab in Tab::ALL {
            app.apply(Command::ShowTab(tab));
            app.refresh();
            assert_inert(&frame(&app, 100, 30, Duration::ZERO), tab.label())?;
        }
        app.apply(Command::ShowTab(Tab::Overview));
        app.reader = Some(Reader { cluster: 0, scroll: 0 });
        assert_inert(&frame(&app, 100, 30, Duration::ZERO), "reader")?;
        app.reader = None;
        app.apply(Command::OpenDiff);
        app.refresh();
        assert_inert(&frame(&app, 100, 30, Duration::ZERO), "diff of the selected cluster")?;
        app.phase = super::state::Phase::Failed(error.clone());
        assert_inert(&frame(&app, 100, 30, Duration::ZERO), "a failed session")?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// The session browser and the comparison view show what archives say about themselves.
    #[test]
    fn no_saved_session_draws_a_control_character(text in hostile(), other in hostile()) {
        use crate::archive::{SessionInfo, SessionList};
        let session = |name: &str| SessionInfo {
            path: format!("/tmp/{name}.jsonl").into(),
            started_at: name.to_string(),
            protocol_name: Some(name.to_string()),
            identity: name.to_string(),
            records: 3,
            outcome: None,
            ended_at: Some(name.to_string()),
            summary: None,
        };
        let mut app = super::state::App::new(text.clone(), vec![], 0);
        let listing = SessionList { sessions: vec![session(&text), session(&other)], skipped: vec![] };
        app.show_sessions(Some(text.clone().into()), Ok(listing));
        assert_inert(&frame(&app, 100, 30, Duration::ZERO), "the session list")?;
        app.browser.show_comparison(Err(other.clone()));
        assert_inert(&frame(&app, 100, 30, Duration::ZERO), "a comparison that failed")?;
        app.browser.show_comparison(Ok(format!("{text}\n{other}")));
        assert_inert(&frame(&app, 100, 30, Duration::ZERO), "a comparison")?;
    }
}
