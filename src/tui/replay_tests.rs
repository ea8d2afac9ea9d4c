//! Playback must end where the live run ended, however it got there.
