//! results.md: the run's machine, command and parameters, its tables, figures and goals. The
//! method is in bench/README.md, which the document links to.

use super::Run;

/// Appends `block` and one blank line (none for an empty block).
fn push(s: &mut String, block: &str) {
    let block = block.trim_end();
    if !block.is_empty() {
        s.push_str(block);
        s.push_str("\n\n");
    }
}

impl Run {
    pub fn markdown(&self) -> String {
        let mut s = String::new();
        push(&mut s, "# syncookie benchmark results");
        push(
            &mut s,
            &format!(
                "Machine: {}.  \nCommand: `{}`  \nRun: {}  \nParameters: {}",
                self.machine, self.command, self.date, self.params
            ),
        );
        push(&mut s, "Method: see [bench/README.md](../README.md).");
        push(
            &mut s,
            "## Scenarios (same flood, same clients, one after another)",
        );
        push(&mut s, &self.table());
        push(&mut s, "![rates and CPU per SYN](chart.svg)");
        push(&mut s, &self.ratios());
        push(&mut s, "Counters over each window:");
        push(&mut s, &self.details());
        push(&mut s, "## Micro-benchmarks (BPF_PROG_TEST_RUN)");
        push(&mut s, &self.micro_md());
        if !self.connrate.is_empty() {
            push(&mut s, "## New connections per second (no flood)");
            push(&mut s, &self.connrate_md());
        }
        push(&mut s, "## Goals");
        push(&mut s, &self.goals_md());
        s.truncate(s.trim_end().len());
        s.push('\n');
        s
    }
}
