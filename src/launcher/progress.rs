//! The waiting screen: one line per phase with the time since launch. On a
//! terminal it is an indicatif spinner that rewrites itself; otherwise plain
//! lines, printed only when the phase changes. Always on stderr, so stdout
//! carries only results.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

pub struct Progress {
    started: Instant,
    spinner: Option<ProgressBar>,
    last: String,
    quiet: bool,
}

impl Progress {
    pub fn new(quiet: bool) -> Progress {
        let spinner = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let spinner = ProgressBar::new_spinner();
            spinner.set_style(
                ProgressStyle::with_template("{spinner} [{elapsed:>4}] {msg}")
                    .expect("the template is valid"),
            );
            spinner.enable_steady_tick(Duration::from_millis(120));
            spinner
        });
        Progress {
            started: Instant::now(),
            spinner,
            last: String::new(),
            quiet,
        }
    }

    pub fn phase(&mut self, text: &str) {
        if self.quiet || text == self.last {
            return;
        }
        self.last = text.to_owned();
        match &self.spinner {
            Some(spinner) => {
                // Keep finished phases on screen, as a log of the wait.
                if !spinner.message().is_empty() {
                    spinner.println(format!(
                        "  [{:>5.1}s] {}",
                        spinner.elapsed().as_secs_f64(),
                        spinner.message()
                    ));
                }
                spinner.set_message(text.to_owned());
            }
            None => eprintln!("[{:>6.1}s] {text}", self.started.elapsed().as_secs_f64()),
        }
    }

    pub fn finish(&mut self) {
        if let Some(spinner) = self.spinner.take() {
            spinner.finish_and_clear();
            if !self.last.is_empty() {
                eprintln!(
                    "  [{:>5.1}s] {}",
                    self.started.elapsed().as_secs_f64(),
                    self.last
                );
            }
        }
    }
}
