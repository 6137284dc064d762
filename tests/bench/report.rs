//! The report: the markdown table and targets printed by a run, and the
//! sanity checks `bench_smoke` and `bench_full` make on it.

use std::time::Duration;

use super::run::{Report, RowFigures};
use crate::common::program_on_path;
use crate::{mesh_sizes, Sizes, SPLIT_GAP};

pub fn percentile(samples: &[Duration], fraction: f64) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    let index = ((sorted.len() as f64 * fraction) as usize).min(sorted.len().saturating_sub(1));
    sorted.get(index).copied().unwrap_or_default()
}

pub fn micros(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e6
}

impl Report {
    pub fn row(&self, label: &str) -> Option<&RowFigures> {
        self.rows.iter().find(|row| row.label.starts_with(label))
    }

    pub fn render(&self, sizes: &Sizes) -> String {
        let mut out = String::new();
        let mut line = |text: String| {
            out.push_str(&text);
            out.push('\n');
        };
        let build = if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        };
        line(format!("## epmdpxy benchmark ({build} build)"));
        line(String::new());
        line(format!("Machine: {}", self.machine));
        line(format!(
            "Load average (1/5/15 min): {} at the start, {} at the end",
            self.load.0, self.load.1
        ));
        line(format!(
            "Sizes: bulk {} MiB each way (best of {} rounds), {} pings, {} split replies, link setups for {:?} (at most {}) per row, in {} interleaved rounds",
            sizes.bulk_bytes >> 20,
            sizes.bulk_rounds,
            sizes.pings,
            sizes.splits,
            sizes.setup_time,
            sizes.setup_max,
            sizes.rounds
        ));
        line(String::new());
        let Some(direct) = self.row("direct") else {
            return out;
        };
        let mut header = "| figure |".to_owned();
        let mut rule = "|---|".to_owned();
        for row in &self.rows {
            header.push_str(&format!(" {} |", row.label));
            rule.push_str("---:|");
        }
        line(header);
        line(rule);
        type Pick = fn(&RowFigures) -> f64;
        let figures: [(&str, Pick); 7] = [
            ("bulk up, Gbit/s", |r| r.bulk_up_gbit),
            ("bulk down, Gbit/s", |r| r.bulk_down_gbit),
            ("ping-pong p50, µs", |r| micros(percentile(&r.ping, 0.5))),
            ("ping-pong p99, µs", |r| micros(percentile(&r.ping, 0.99))),
            ("split reply p50, µs", |r| {
                micros(percentile(&r.split, 0.5))
            }),
            ("split reply p99, µs", |r| {
                micros(percentile(&r.split, 0.99))
            }),
            ("link setups/s", |r| r.setups_per_second()),
        ];
        for (name, pick) in figures {
            let base = pick(direct);
            let mut text = format!("| {name} |");
            for row in &self.rows {
                let value = pick(row);
                text.push_str(&format!(" {value:.1} ({:.2}×) |", value / base));
            }
            line(text);
        }
        let mut text = "| relay CPU per ping-pong round trip, µs |".to_owned();
        for row in &self.rows {
            if row.label == "direct" {
                text.push_str(" — |");
            } else {
                let per_ping = micros(row.relay_cpu_pinging) / row.ping.len().max(1) as f64;
                text.push_str(&format!(" {per_ping:.1} |"));
            }
        }
        line(text);
        let mut text = "| relay CPU during bulk, ms per GiB |".to_owned();
        for row in &self.rows {
            match row.relay_cpu_ms_per_gib {
                Some(ms) => text.push_str(&format!(" {ms:.0} |")),
                None => text.push_str(" — |"),
            }
        }
        line(text);
        line(String::new());
        line("Ratios are to `direct` in the same run (higher is better for Gbit/s and setups/s, lower for µs).".to_owned());
        for row in &self.rows {
            line(format!(
                "- link setup, {}: {} ({} setups)",
                row.label, row.setup_note, row.setups
            ));
        }

        if !self.erpc.is_empty() {
            line(String::new());
            line(
                "| `erpc:call(Other, erlang, node, [])` | calls | p50, µs | p99, µs | mean, µs |"
                    .to_owned(),
            );
            line("|---|---:|---:|---:|---:|".to_owned());
            let base = self.erpc.first().map_or(1.0, |e| e.p50_us);
            for e in &self.erpc {
                line(format!(
                    "| two OTP nodes via {} | {} | {:.1} ({:.2}×) | {:.1} | {:.1} |",
                    e.label,
                    e.calls,
                    e.p50_us,
                    e.p50_us / base,
                    e.p99_us,
                    e.mean_us
                ));
            }
        }

        if !self.scale.is_empty() {
            line(String::new());
            line(format!(
                "Full mesh through epmdpxy (fresh proxy; with no node: RSS {} KiB, {} threads):",
                self.scale_baseline.0, self.scale_baseline.1
            ));
            line(String::new());
            line(
                "| nodes (real) | links | threads | RSS, KiB | (RSS − idle RSS) per link, KiB |"
                    .to_owned(),
            );
            line("|---:|---:|---:|---:|---:|".to_owned());
            for s in &self.scale {
                line(format!(
                    "| {} ({}) | {} | {} | {} | {:.1} |",
                    s.nodes, s.real_nodes, s.links, s.threads, s.rss_kib, s.rss_per_link_kib
                ));
            }
        }

        if let Some(cut) = &self.cut {
            line(String::new());
            line(format!(
                "Cut of a busy link: epmdpxy CPU over {:?} while streaming: {:.1} ms ({:.0} MiB relayed); \
                 over {:?} while cut: {:.2} ms ({} bytes relayed); flow resumed after fix: {}",
                cut.window,
                micros(cut.busy_cpu) / 1e3,
                cut.busy_bytes as f64 / f64::from(1 << 20),
                cut.window,
                micros(cut.cut_cpu) / 1e3,
                cut.cut_bytes,
                cut.resumed
            ));
        }

        line(String::new());
        line("Targets (same run):".to_owned());
        for target in self.targets() {
            line(format!("- {target}"));
        }
        for note in &self.notes {
            line(format!("- note: {note}"));
        }
        out
    }

    /// Each target of issue 8 with its measured ratio.
    pub fn targets(&self) -> Vec<String> {
        let mut out = Vec::new();
        let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
        let (Some(direct), Some(proxy)) = (self.row("direct"), self.row("epmdpxy")) else {
            return out;
        };
        if let Some(socat) = self.row("socat") {
            let up = proxy.bulk_up_gbit / socat.bulk_up_gbit;
            let down = proxy.bulk_down_gbit / socat.bulk_down_gbit;
            out.push(format!(
                "bulk ≥ 1.0× socat (aim 1.3×): up {up:.2}×, down {down:.2}× — {}",
                verdict(up >= 1.0 && down >= 1.0)
            ));
            let ping = micros(percentile(&proxy.ping, 0.5)) / micros(percentile(&socat.ping, 0.5));
            out.push(format!(
                "ping-pong p50 ≤ 0.8× socat: {ping:.2}× — {}",
                verdict(ping <= 0.8)
            ));
            let setups = proxy.setups_per_second() / socat.setups_per_second();
            out.push(format!(
                "link setups/s ≥ 1.5× socat: {setups:.2}× — {}",
                verdict(setups >= 1.5)
            ));
        }
        let split = micros(percentile(&proxy.split, 0.5)) / micros(percentile(&direct.split, 0.5));
        out.push(format!(
            "split reply p50 ≤ 1.1× direct: {split:.2}× — {}",
            verdict(split <= 1.1)
        ));
        if let (Some(epmd), Some(pxy)) = (
            self.erpc.iter().find(|e| e.label == "OTP epmd"),
            self.erpc.iter().find(|e| e.label == "epmdpxy"),
        ) {
            let ratio = pxy.p50_us / epmd.p50_us;
            out.push(format!(
                "erpc:call via epmdpxy ≤ 1.2× via OTP epmd: p50 {ratio:.2}× (mean {:.2}×) — {}",
                pxy.mean_us / epmd.mean_us,
                verdict(ratio <= 1.2)
            ));
        }
        if let Some(last) = self.scale.last() {
            out.push(format!(
                "≤ 100 KiB RSS per live link at N = {}: {:.1} KiB — {}",
                last.nodes,
                last.rss_per_link_kib,
                verdict(last.rss_per_link_kib <= 100.0)
            ));
        }
        if let Some(cut) = &self.cut {
            let share = cut.cut_cpu.as_secs_f64() / cut.window.as_secs_f64();
            out.push(format!(
                "a cut costs no CPU: {:.3}% of one core during the cut — {}",
                share * 100.0,
                verdict(share < 0.01)
            ));
        }
        out
    }

    /// Every figure was measured and is a plausible number. Not a timing
    /// check: only that the benchmark itself still works.
    pub fn assert_sane(&self, sizes: &Sizes) {
        let positive = |what: &str, value: f64| {
            assert!(
                value.is_finite() && value > 0.0,
                "{what} = {value}: not a sane measurement"
            );
        };
        assert!(self.row("direct").is_some() && self.row("epmdpxy").is_some());
        if program_on_path("socat") {
            assert!(
                self.row("socat").is_some(),
                "socat is installed but has no row"
            );
        }
        for row in &self.rows {
            let label = &row.label;
            positive(&format!("{label} bulk up"), row.bulk_up_gbit);
            positive(&format!("{label} bulk down"), row.bulk_down_gbit);
            assert_eq!(row.ping.len(), sizes.pings, "{label} ping samples");
            assert_eq!(row.split.len(), sizes.splits, "{label} split samples");
            positive(
                &format!("{label} ping p50"),
                micros(percentile(&row.ping, 0.5)),
            );
            assert!(percentile(&row.ping, 0.99) >= percentile(&row.ping, 0.5));
            // Each split reply waits for the node's 200 µs pause.
            assert!(
                percentile(&row.split, 0.5) >= SPLIT_GAP,
                "{label}: a split reply came back before the node sent its second half"
            );
            assert!(row.setups > 0, "{label}: no link set up");
            positive(&format!("{label} setups/s"), row.setups_per_second());
        }
        let cut = self.cut.as_ref().expect("cut figures");
        assert!(cut.busy_bytes > 0, "no bytes relayed before the cut");
        assert!(cut.resumed, "the busy link did not resume after fix");
        if program_on_path("erl") {
            let expected_erpc = if program_on_path("epmd") { 2 } else { 1 };
            assert_eq!(self.erpc.len(), expected_erpc, "erpc figures");
            for e in &self.erpc {
                assert!(e.calls > 0, "{}: no erpc call timed", e.label);
                positive(&format!("{} erpc p50", e.label), e.p50_us);
                assert!(e.p99_us >= e.p50_us);
            }
            let mesh = mesh_sizes(sizes);
            assert_eq!(self.scale.len(), mesh.len(), "scale steps");
            for (step, &nodes) in self.scale.iter().zip(&mesh) {
                assert_eq!(step.nodes, nodes);
                assert_eq!(step.links, nodes * (nodes - 1) / 2);
                // at least the registration threads plus two per link
                assert!(step.threads as usize >= nodes + 2 * step.links);
                assert!(step.rss_kib > 0);
            }
        }
    }
}
