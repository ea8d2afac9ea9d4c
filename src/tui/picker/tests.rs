//! The picker as a user drives it: discovery, editing each field, launching, saving, drawing,
//! and the real loop launching the default demo with one key.

use std::time::Duration;

use ratatui::backend::TestBackend;
use ratatui::Terminal;

use super::*;
use crate::tui::state::{App, Effect, Screen};
use crate::tui::testing::{find_line, frame, lines};

const MINE: &str = "# my own protocol\n[protocol]\nname = \"mine\"\ndescription = \"A test of my own\"\n\n[prompt]\nuser = \"Say hi\"  # short\n\n[params]\ntemperature = 0.5\n\n[campaign]\nrepeats = 3\nconcurrency = 2\n";

fn user_dir(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    dir
}

fn picker_with(files: &[(&str, &str)]) -> (tempfile::TempDir, PickerState) {
    let dir = user_dir(files);
    let picker = PickerState::discover_in(Some(dir.path().to_path_buf()));
    (dir, picker)
}

fn select(picker: &mut PickerState, name: &str) {
    picker.selected = picker
        .entries
        .iter()
        .position(|e| e.name == name)
        .unwrap_or_else(|| panic!("{name} not listed"));
}

fn type_into(picker: &mut PickerState, field: Field, typed: &str) {
    picker.focus = Focus::Editor;
    picker.field = field;
    picker.apply(Command::Activate);
    assert_eq!(picker.mode(), Mode::Edit);
    // Replace what is there, as a user would with Backspace.
    for _ in 0..picker.editing.as_ref().map_or(0, |s| s.chars().count()) {
        picker.apply(Command::Backspace);
    }
    for c in typed.chars() {
        picker.apply(Command::Input(c));
    }
    picker.apply(Command::CommitEdit);
    assert_eq!(picker.mode(), Mode::Picker);
}

fn launched(effect: PickerEffect) -> Protocol {
    match effect {
        PickerEffect::Launch(p) => *p,
        PickerEffect::None => panic!("nothing launched"),
    }
}

#[test]
fn samples_come_first_with_the_default_demo_on_top_then_the_users_files() {
    let (_dir, picker) = picker_with(&[("mine.toml", MINE), ("notes.txt", "not a protocol")]);
    let names: Vec<&str> = picker.entries.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names[0], DEFAULT_DEMO);
    assert_eq!(names.len(), SAMPLES.len() + 1, "{names:?}");
    for (stem, _) in SAMPLES {
        assert!(names.contains(stem), "{stem}");
    }
    let last = picker.entries.last().unwrap();
    assert_eq!((last.name.as_str(), last.origin), ("mine", Origin::User));
    assert_eq!(last.description, "A test of my own");
    assert!(picker.entries[..SAMPLES.len()]
        .iter()
        .all(|e| e.origin == Origin::Sample && e.parsed.is_ok()));
}

#[test]
fn a_missing_user_directory_lists_the_samples_only() {
    let picker = PickerState::discover_in(Some(PathBuf::from("/nonexistent/reprise/protocols")));
    assert_eq!(picker.entries.len(), SAMPLES.len());
}

#[test]
fn a_broken_user_file_is_listed_and_says_why_when_selected() {
    let broken =
        "[protocol]\nname = \"bad\"\n\n[prompt]\nuser = \"x\"\n\n[params]\ntemperature = \"hot\"\n";
    let (_dir, mut picker) = picker_with(&[("bad.toml", broken)]);
    let entry = picker.entries.last().unwrap();
    assert_eq!(entry.name, "bad");
    let error = entry.parsed.as_ref().unwrap_err().clone();
    assert!(error.contains("bad.toml:8"), "{error}");
    assert!(error.contains("params.temperature"), "{error}");
    picker.selected = picker.entries.len() - 2;
    picker.apply(Command::SelectDown);
    assert_eq!(picker.error.as_deref(), Some(error.as_str()));
    // Neither launching nor editing it panics; both say why.
    assert!(matches!(picker.apply(Command::Launch), PickerEffect::None));
    assert!(picker
        .error
        .as_ref()
        .unwrap()
        .contains("params.temperature"));
    picker.focus = Focus::Editor;
    picker.apply(Command::Activate);
    assert_eq!(picker.mode(), Mode::Picker);
    assert!(picker
        .error
        .as_ref()
        .unwrap()
        .starts_with("fix the file first"));
}

#[test]
fn enter_on_a_fresh_picker_launches_the_default_demo_on_the_local_model() {
    let mut picker = PickerState::discover_in(None);
    let protocol = launched(picker.apply(Command::Activate));
    assert_eq!(protocol.meta.name, DEFAULT_DEMO);
    let targets: Vec<&str> = protocol.targets.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(targets, ["local"]);
    // As `reprise run sample-protocols/<demo>.toml` would read it.
    let on_disk = Protocol::load(&sample_path(DEFAULT_DEMO)).unwrap();
    assert_eq!(protocol, on_disk);
}

#[test]
fn launching_yields_the_protocol_as_edited() {
    let mut picker = PickerState::discover_in(None);
    select(&mut picker, "biography");
    type_into(&mut picker, Field::Repeats, "7");
    type_into(&mut picker, Field::Temperature, "0.3");
    type_into(&mut picker, Field::Seed, "42");
    type_into(&mut picker, Field::Concurrency, "2");
    type_into(&mut picker, Field::Prompt, "Tell me about Emmy Noether.");
    assert_eq!(picker.error, None);
    let protocol = launched(picker.apply(Command::Launch));
    assert_eq!(protocol.campaign.repeats, 7);
    assert_eq!(protocol.campaign.concurrency, 2);
    assert_eq!(protocol.params.temperature, Some(0.3));
    assert_eq!(protocol.params.seed, Some(42));
    assert_eq!(protocol.items[0].user, "Tell me about Emmy Noether.");
    // Untouched fields are as in the file.
    assert_eq!(protocol.params.max_tokens, Some(200));
    // Enter on the list launches the same edited protocol.
    picker.focus = Focus::List;
    assert_eq!(launched(picker.apply(Command::Activate)), protocol);
}

#[test]
fn an_empty_seed_means_none() {
    let mut picker = PickerState::discover_in(None);
    select(&mut picker, "seeded-sampling");
    assert_eq!(picker.current().unwrap().value(Field::Seed), "42");
    type_into(&mut picker, Field::Seed, "");
    let protocol = launched(picker.apply(Command::Launch));
    assert_eq!(protocol.params.seed, None);
    assert!(!picker.current().unwrap().text.contains("seed ="));
}

#[test]
fn invalid_values_are_refused_naming_the_field_and_the_old_value_stays() {
    let mut picker = PickerState::discover_in(None);
    select(&mut picker, "biography");
    let before = picker.current().unwrap().text.clone();
    for (field, typed, named) in [
        (Field::Temperature, "hot", "params.temperature"),
        (Field::Temperature, "3", "params.temperature"),
        (Field::Repeats, "0", "campaign.repeats"),
        (Field::Concurrency, "-1", "campaign.concurrency"),
        (Field::Seed, "1.5", "params.seed"),
        (Field::Prompt, "", "prompt.user"),
        (Field::Repeats, "= [", "campaign.repeats"),
    ] {
        type_into(&mut picker, field, typed);
        let error = picker.error.clone().unwrap_or_default();
        assert!(error.contains(named), "{typed:?}: {error}");
        assert_eq!(picker.current().unwrap().text, before, "{typed:?}");
    }
    assert_eq!(
        launched(picker.apply(Command::Launch)).campaign.repeats,
        100
    );
}

#[test]
fn escape_while_typing_keeps_the_old_value() {
    let mut picker = PickerState::discover_in(None);
    picker.focus = Focus::Editor;
    picker.field = Field::Repeats;
    picker.apply(Command::Activate);
    picker.apply(Command::Input('9'));
    picker.apply(Command::CancelEdit);
    assert_eq!(picker.mode(), Mode::Picker);
    assert!(!picker.current().unwrap().edited());
}

#[test]
fn edits_survive_in_the_text_with_comments_intact() {
    let (_dir, mut picker) = picker_with(&[("mine.toml", MINE)]);
    select(&mut picker, "mine");
    type_into(&mut picker, Field::Prompt, "Say hello");
    type_into(&mut picker, Field::Repeats, "9");
    let text = &picker.current().unwrap().text;
    assert_eq!(
        text,
        &MINE
            .replace("\"Say hi\"  # short", "\"Say hello\"  # short")
            .replace("repeats = 3", "repeats = 9")
    );
}

#[test]
fn a_battery_shows_its_items_and_does_not_edit_one_as_the_prompt() {
    let mut picker = PickerState::discover_in(None);
    select(&mut picker, "battery");
    assert_eq!(
        picker.current().unwrap().prompt_slot,
        Some(PromptSlot::Items(5))
    );
    picker.focus = Focus::Editor;
    picker.field = Field::Prompt;
    picker.apply(Command::Activate);
    assert_eq!(picker.mode(), Mode::Picker);
    assert!(picker.error.as_ref().unwrap().contains("5 items"));
    // The single-item multiple-choice edits its one item as the prompt.
    select(&mut picker, "multiple-choice");
    type_into(
        &mut picker,
        Field::Prompt,
        "Which is largest? A) 1 B) 2\nAnswer: <letter>",
    );
    let protocol = launched(picker.apply(Command::Launch));
    assert!(protocol.items[0].user.starts_with("Which is largest?"));
    assert_eq!(protocol.items[0].name, "shortest-year");
}

const TWO_TARGETS: &str = "[protocol]\nname = \"remote\"\n\n[prompt]\nuser = \"Hi\"\n\n[[targets]]\nprovider = \"openai\"\nmodel = \"gpt-4o\"\n\n[[targets]]\nprovider = \"anthropic\"\nmodel = \"claude\"\n";

#[test]
fn target_cycles_through_the_protocols_targets_then_local() {
    let (_dir, mut picker) = picker_with(&[("remote.toml", TWO_TARGETS)]);
    select(&mut picker, "remote");
    let entry = picker.current().unwrap();
    assert_eq!(entry.target_label(), "all: openai/gpt-4o, anthropic/claude");
    let mut seen = Vec::new();
    picker.focus = Focus::Editor;
    picker.field = Field::Target;
    for _ in 0..4 {
        picker.apply(Command::Activate);
        seen.push(picker.current().unwrap().value(Field::Target));
    }
    assert_eq!(
        seen,
        [
            "openai/gpt-4o",
            "anthropic/claude",
            "local",
            "all: openai/gpt-4o, anthropic/claude"
        ]
    );
    picker.entries.last_mut().unwrap().target = 3;
    let protocol = launched(picker.apply(Command::Launch));
    let targets: Vec<&str> = protocol.targets.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(targets, ["local"]);
}

/// The real loop refuses a target it cannot call: the picker stays up and says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_launch_shows_in_the_picker() {
    use crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers};
    use futures_util::stream;

    // A configured provider whose key is not set: refused before anything is sent, so
    // nothing may reach a network from a test.
    const NO_KEY: &str = "[protocol]\nname = \"remote\"\n\n[prompt]\nuser = \"Hi\"\n\n[[targets]]\nprovider = \"lab\"\nmodel = \"m\"\n";
    let config = crate::config::Config::parse(
        std::path::Path::new("config.toml"),
        "[providers.lab]\nkind = \"gemini\"\nbase_url = \"http://127.0.0.1:9/v1beta\"\napi_key_env = \"REPRISE_UNIT_SURELY_UNSET\"\n",
    )
    .unwrap();
    let dir = user_dir(&[("remote.toml", NO_KEY)]);
    let mut picker = PickerState::discover_with(Some(dir.path().to_path_buf()), config.providers);
    select(&mut picker, "remote");
    let key = |c| {
        Ok(Event::Key(KeyEvent::new(
            KeyCode::Char(c),
            KeyModifiers::NONE,
        )))
    };
    // Input ends after the keys: with nothing running, the loop then exits.
    let keys = stream::iter(vec![key('r')]);
    let mut terminal = Terminal::new(TestBackend::new(100, 30)).unwrap();
    let outcome = crate::tui::drive(
        App::picker(picker),
        None,
        &mut terminal,
        keys,
        crate::tui::Clock::Fixed(Duration::ZERO),
    )
    .await
    .unwrap();
    assert!(matches!(outcome, crate::tui::Outcome::NothingRun));
    let screen = lines(terminal.backend().buffer()).concat();
    assert!(screen.contains("choose a protocol"), "{screen}");
    // The sentence wraps; its start and the variable's name are on the screen.
    assert!(screen.contains("target `lab/m`: pr"), "{screen}");
    assert!(screen.contains("$REPRISE_UNIT_SURELY_UNSET"), "{screen}");
}

#[test]
fn saving_a_sample_writes_a_new_file_that_loads_back() {
    let (dir, mut picker) = picker_with(&[("biography.toml", MINE)]);
    select(&mut picker, "biography");
    type_into(&mut picker, Field::Repeats, "5");
    picker.apply(Command::Save);
    assert_eq!(picker.error, None);
    // biography.toml is taken (by another protocol): a free name, never an overwrite.
    let path = dir.path().join("biography-2.toml");
    assert!(picker.notice.as_ref().unwrap().contains("biography-2.toml"));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("biography.toml")).unwrap(),
        MINE
    );
    let saved = Protocol::load(&path).unwrap();
    assert_eq!(saved.campaign.repeats, 5);
    assert_eq!(saved.meta.name, "biography");
    // The saved copy is selected; the sample is itself again.
    let current = picker.current().unwrap();
    assert_eq!((current.origin, current.edited()), (Origin::User, false));
    assert!(picker
        .entries
        .iter()
        .any(|e| e.origin == Origin::Sample && e.name == "biography" && !e.edited()));
    // A fresh discovery lists it.
    let again = PickerState::discover_in(Some(dir.path().to_path_buf()));
    assert!(again.entries.iter().any(|e| e.path == path));
}

#[test]
fn saving_a_user_file_rewrites_it_unless_it_changed_on_disk() {
    let (dir, mut picker) = picker_with(&[("mine.toml", MINE)]);
    let path = dir.path().join("mine.toml");
    select(&mut picker, "mine");
    type_into(&mut picker, Field::Concurrency, "6");
    picker.apply(Command::Save);
    assert_eq!(Protocol::load(&path).unwrap().campaign.concurrency, 6);
    assert!(!picker.current().unwrap().edited());
    std::fs::write(&path, MINE).unwrap();
    type_into(&mut picker, Field::Concurrency, "7");
    picker.apply(Command::Save);
    assert!(picker.error.as_ref().unwrap().contains("changed on disk"));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), MINE);
}

#[test]
fn the_picker_keeps_its_state_across_a_campaign() {
    let mut app = App::picker(PickerState::discover_in(None));
    select(&mut app.picker, "warmup");
    type_into(&mut app.picker, Field::Repeats, "3");
    let Effect::Launch(protocol) = app.apply(Command::Launch) else {
        panic!("no launch");
    };
    app.launched(protocol.meta.name.clone(), vec!["local".into()], 3);
    app.session_closed(crate::tui::state::Phase::Finished { completed: true });
    app.apply(Command::BackToPicker);
    assert_eq!(app.screen, Screen::Picker);
    assert_eq!(app.picker.current().unwrap().name, "warmup");
    assert_eq!(app.picker.current().unwrap().value(Field::Repeats), "3");
}

fn draw(app: &App, width: u16, height: u16) -> (Vec<String>, ratatui::buffer::Buffer) {
    let buffer = frame(app, width, height, Duration::ZERO);
    (lines(&buffer), buffer)
}

/// The editor row of a field: the pane border, then the padded label.
fn row(label: &str) -> String {
    format!("│ {label:<12}")
}

#[test]
fn picker_draws_the_list_the_editor_and_the_launch_key_at_both_sizes() {
    let (_dir, mut picker) = picker_with(&[("mine.toml", MINE)]);
    type_into(&mut picker, Field::Repeats, "7");
    picker.focus = Focus::List;
    let app = App::picker(picker);
    for (w, h) in [(100, 30), (80, 24)] {
        let (lines, buffer) = draw(&app, w, h);
        let (y, demo) = find_line(&lines, &format!("*{DEFAULT_DEMO} demo"));
        // The selected entry carries the theme's selection style.
        let x = demo.find(DEFAULT_DEMO).unwrap();
        let x = demo[..x].chars().count() as u16;
        assert_eq!(
            buffer[(x, y as u16)].style().add_modifier,
            app.theme.selected.add_modifier
        );
        find_line(&lines, "biography sample");
        // Stacked at 80×24 the list shows its first rows; yours follow the samples.
        if w == 100 {
            find_line(&lines, "mine yours");
        }
        find_line(&lines, &format!("{DEFAULT_DEMO} · sample · edited"));
        assert!(
            find_line(&lines, &row("prompt")).1.contains("Which planet"),
            "{w}x{h}"
        );
        assert!(find_line(&lines, &row("temperature")).1.contains("0.8"));
        let (y, seed) = find_line(&lines, &row("seed"));
        let x = seed
            .find("none")
            .map(|b| seed[..b].chars().count())
            .unwrap() as u16;
        // An absent value reads as a default, not as a value typed.
        assert_eq!(buffer[(x, y as u16)].fg, app.theme.muted.fg.unwrap());
        assert!(find_line(&lines, &row("repeats")).1.contains('7'));
        assert!(find_line(&lines, &row("concurrency")).1.contains('8'));
        assert!(find_line(&lines, &row("target")).1.contains("local"));
        find_line(&lines, "Enter launch");
        if w >= 100 {
            // Side by side: the list and the editor share rows.
            assert!(find_line(&lines, &row("temperature")).1.contains("sample"));
        }
    }
}

#[test]
fn errors_are_drawn_in_the_error_style_and_typing_shows_a_cursor() {
    let mut picker = PickerState::discover_in(None);
    type_into(&mut picker, Field::Temperature, "hot");
    let mut app = App::picker(picker);
    let (lines, buffer) = draw(&app, 80, 24);
    let (y, line) = find_line(&lines, "params.temperature");
    let x = line
        .find("params")
        .map(|b| line[..b].chars().count())
        .unwrap() as u16;
    assert_eq!(buffer[(x, y as u16)].fg, app.theme.error.fg.unwrap());
    app.picker.apply(Command::Activate);
    app.picker.apply(Command::Input('\u{1b}'));
    let (lines, _) = draw(&app, 80, 24);
    // What is typed is inert text, with a cursor after it.
    assert!(find_line(&lines, &row("temperature")).1.contains("0.8␛▏"));
    find_line(&lines, "typing");
}

/// The real loop: Enter on a fresh picker starts the default demo; q then y stop it and quit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_key_runs_the_default_demo_through_the_real_loop() {
    use crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers};
    use futures_util::stream::{self, StreamExt};

    let data = tempfile::tempdir().unwrap();
    let mut app = App::picker(PickerState::discover_in(None));
    app.sessions_dir = Some(data.path().join("sessions"));
    let key = |code| Ok(Event::Key(KeyEvent::new(code, KeyModifiers::NONE)));
    let keys = stream::iter(vec![
        key(KeyCode::Enter),
        key(KeyCode::Char('q')),
        key(KeyCode::Char('y')),
    ])
    .chain(stream::pending());
    let mut terminal = Terminal::new(TestBackend::new(100, 30)).unwrap();
    let outcome = tokio::time::timeout(
        Duration::from_secs(60),
        crate::tui::drive(
            app,
            None,
            &mut terminal,
            keys,
            crate::tui::Clock::Fixed(Duration::from_secs(5)),
        ),
    )
    .await
    .expect("the loop ends after q, y")
    .unwrap();
    let crate::tui::Outcome::Closed(result) = outcome else {
        panic!("no session ran");
    };
    let sessions: Vec<PathBuf> = std::fs::read_dir(data.path().join("sessions"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    assert_eq!(result.protocol, DEFAULT_DEMO);
    assert_eq!(result.archive, sessions[0]);
    // Stopped by q, y: the archive is closed and its chain sound.
    crate::archive::verify(&result.archive).unwrap();
    let screen = lines(terminal.backend().buffer()).concat();
    assert!(screen.contains(DEFAULT_DEMO), "{screen}");
}

#[test]
fn a_protocol_from_the_command_line_is_listed_and_selected() {
    let dir = tempfile::tempdir().unwrap();
    let mut picker = PickerState::discover_in(None);
    // A sample given by its path is the listed sample, not a second entry.
    let n = picker.entries.len();
    picker.select_file(std::path::Path::new("sample-protocols/battery.toml"));
    assert_eq!(picker.entries.len(), n);
    assert_eq!(picker.current().unwrap().name, "battery");
    let path = dir.path().join("elsewhere.toml");
    std::fs::write(&path, MINE).unwrap();
    picker.select_file(&path);
    assert_eq!(picker.entries.len(), n + 1);
    assert_eq!(picker.current().unwrap().path, path);
    // Selecting it again does not list it twice.
    picker.select_file(&path);
    assert_eq!(picker.entries.len(), n + 1);
}

#[test]
fn protocols_may_name_the_users_configured_providers() {
    const SERVED: &str = "[protocol]\nname = \"served\"\n[prompt]\nuser = \"hi\"\n[[targets]]\nprovider = \"serve\"\n";
    let dir = user_dir(&[("served.toml", SERVED)]);
    // Without the config, `serve` is unknown and the entry says so.
    let plain = PickerState::discover_in(Some(dir.path().to_path_buf()));
    let entry = plain.entries.iter().find(|e| e.name == "served").unwrap();
    assert!(
        entry
            .parsed
            .as_ref()
            .is_err_and(|e| e.contains("unknown provider `serve`")),
        "{:?}",
        entry.parsed
    );
    let config = crate::config::Config::parse(
        std::path::Path::new("config.toml"),
        "[providers.serve]\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:8080/v1\"\nmodel = \"reprise-local-1\"\n",
    )
    .unwrap();
    let mut picker = PickerState::discover_with(Some(dir.path().to_path_buf()), config.providers);
    select(&mut picker, "served");
    assert!(picker.entries[picker.selected].parsed.is_ok());
    // Edits are validated against the same providers.
    type_into(&mut picker, Field::Repeats, "7");
    assert_eq!(picker.error, None);
    let protocol = picker.entries[picker.selected].parsed.clone().unwrap();
    assert_eq!(protocol.campaign.repeats, 7);
    // And the launch finds the configured backend.
    let spec =
        crate::session::SessionSpec::with_providers(protocol, None, &picker.providers).unwrap();
    assert_eq!(
        spec.backends[0].endpoint(),
        "http://127.0.0.1:8080/v1/chat/completions"
    );
}
