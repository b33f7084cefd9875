//! A checklist: named checks that pass or fail with a reason, reported together as
//! `PASS`/`FAIL` lines, so one run shows every failure instead of the first.

/// Checks in the order made.
#[derive(Default)]
pub struct Checks {
    results: Vec<(String, Result<(), String>)>,
}

impl Checks {
    pub fn check(&mut self, name: impl Into<String>, r: Result<(), String>) {
        self.results.push((name.into(), r));
    }

    /// A check that holds when `ok`; `why` (only called on failure) says what was seen.
    pub fn that(&mut self, name: impl Into<String>, ok: bool, why: impl FnOnce() -> String) {
        self.check(name, if ok { Ok(()) } else { Err(why()) });
    }

    pub fn failed(&self) -> usize {
        self.results.iter().filter(|r| r.1.is_err()).count()
    }

    /// `==== TITLE: N checks, N passed, N failed`, then a line per check (a failure's reason
    /// indented under it, cut at 3,000 characters).
    pub fn report(&self, title: &str) -> String {
        let mut s = format!(
            "==== {title}: {} checks, {} passed, {} failed\n",
            self.results.len(),
            self.results.len() - self.failed(),
            self.failed()
        );
        for (n, r) in &self.results {
            match r {
                Ok(()) => s.push_str(&format!("PASS {n}\n")),
                Err(e) => {
                    let mut e: String = e.chars().take(3000).collect();
                    if e.len() < r.as_ref().err().map_or(0, String::len) {
                        e.push_str("...(cut)");
                    }
                    s.push_str(&format!("FAIL {n}\n     {}\n", e.replace('\n', "\n     ")));
                }
            }
        }
        s
    }
}
