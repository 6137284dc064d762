//! Comparing what the nodes reported in the REAL run and in the epmdpxy
//! run of a scenario, and the markdown table of both.
//!
//! Per phase and per node: the same nodedowns (peer and reason, as
//! multisets, matched in time order), each at a time within the
//! scenario's tolerance of the REAL one; the same final `nodes()`; the same
//! ping results, their durations within max(0.5 s, 25 %); and, where the
//! phase ends meshed, the time the mesh formed within max(0.5 s, 25 %).

use crate::scenarios::{Down, Phase, Ping, Scenario, Tolerance};

/// One table row: a node in a phase of a scenario, or (`node` = `all`) a
/// phase's cluster-wide facts.
pub struct Row {
    pub scenario: String,
    pub phase: &'static str,
    pub node: String,
    pub real: String,
    pub proxy: String,
    /// Empty when the two agree.
    pub problems: Vec<String>,
    /// `f1↔f2` when the epmdpxy run is shown with two alike nodes' names
    /// swapped.
    pub swapped: Option<String>,
}

fn secs(ms: i64) -> String {
    format!("{:.2} s", ms as f64 / 1000.0)
}

fn describe_downs(downs: &[Down]) -> String {
    if downs.is_empty() {
        return "no nodedown".to_owned();
    }
    downs
        .iter()
        .map(|d| format!("{} {} {}", d.peer, d.reason, secs(d.at_ms)))
        .collect::<Vec<_>>()
        .join("; ")
}

fn describe_view(view: &[String]) -> String {
    if view.is_empty() {
        "sees none".to_owned()
    } else {
        format!("sees {}", view.join(","))
    }
}

fn describe_pings(pings: &[&Ping]) -> String {
    pings
        .iter()
        .map(|p| format!("ping {} {} {}", p.to, p.result, secs(p.took_ms)))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The nodedowns of one node: each REAL one matched to the first unmatched
/// epmdpxy one with the same peer and reason.
fn compare_downs(real: &[Down], proxy: &[Down], tolerance: Tolerance) -> Vec<String> {
    let mut problems = Vec::new();
    let mut used = vec![false; proxy.len()];
    for r in real {
        let found = proxy
            .iter()
            .enumerate()
            .find(|(j, p)| !used[*j] && p.peer == r.peer && p.reason == r.reason);
        match found {
            Some((j, p)) => {
                used[j] = true;
                let allowed = tolerance.allowed_ms(r.at_ms);
                if (p.at_ms - r.at_ms).abs() > allowed {
                    problems.push(format!(
                        "nodedown {} {} at {} vs REAL {} (allowed ±{})",
                        r.peer,
                        r.reason,
                        secs(p.at_ms),
                        secs(r.at_ms),
                        secs(allowed)
                    ));
                }
            }
            None => problems.push(format!(
                "REAL nodedown {} {} at {} has no epmdpxy counterpart",
                r.peer,
                r.reason,
                secs(r.at_ms)
            )),
        }
    }
    for (p, _) in proxy.iter().zip(&used).filter(|(_, used)| !**used) {
        problems.push(format!(
            "epmdpxy nodedown {} {} at {} has no REAL counterpart",
            p.peer,
            p.reason,
            secs(p.at_ms)
        ));
    }
    problems
}

fn compare_pings(real: &[&Ping], proxy: &[&Ping]) -> Vec<String> {
    let mut problems = Vec::new();
    if real.len() != proxy.len() {
        problems.push(format!(
            "{} pings reported vs {} in REAL",
            proxy.len(),
            real.len()
        ));
    }
    for (r, p) in real.iter().zip(proxy) {
        if r.to != p.to || r.result != p.result {
            problems.push(format!(
                "ping {} {} vs REAL ping {} {}",
                p.to, p.result, r.to, r.result
            ));
        }
        let allowed = Tolerance::Relative.allowed_ms(r.took_ms);
        if (p.took_ms - r.took_ms).abs() > allowed {
            problems.push(format!(
                "ping {} took {} vs REAL {} (allowed ±{})",
                p.to,
                secs(p.took_ms),
                secs(r.took_ms),
                secs(allowed)
            ));
        }
    }
    problems
}

/// `phases` with nodes `a` and `b` (0-based) swapped: their rows, and
/// their names wherever they appear in what the nodes reported.
fn swapped(phases: &[Phase], a: usize, b: usize) -> Vec<Phase> {
    let (name_a, name_b) = (format!("f{}", a + 1), format!("f{}", b + 1));
    let rename = |name: &str| -> String {
        if name == name_a {
            name_b.clone()
        } else if name == name_b {
            name_a.clone()
        } else {
            name.to_owned()
        }
    };
    phases
        .iter()
        .map(|phase| {
            let mut phase = phase.clone();
            phase.downs.swap(a, b);
            phase.views.swap(a, b);
            for down in phase.downs.iter_mut().flatten() {
                down.peer = rename(&down.peer);
            }
            for view in &mut phase.views {
                *view = view.iter().map(|n| rename(n)).collect();
                view.sort();
            }
            // Pings stay as they are: the test made them, the nodes did not.
            phase
        })
        .collect()
}

/// The rows of one scenario (see `rows_as_run`); when the scenario has two
/// nodes that the fault treats alike, the epmdpxy run is also compared
/// with their names swapped, and the closer reading is kept (noted in the
/// phase column).
pub fn rows(scenario: &Scenario, real: &[Phase], proxy: &[Phase]) -> Vec<Row> {
    let as_run = rows_as_run(scenario, real, proxy);
    let Some((a, b)) = scenario.alike else {
        return as_run;
    };
    let mut other = rows_as_run(scenario, real, &swapped(proxy, a, b));
    let count = |rows: &[Row]| rows.iter().map(|r| r.problems.len()).sum::<usize>();
    if count(&other) >= count(&as_run) {
        return as_run;
    }
    for row in &mut other {
        row.swapped = Some(format!("f{}↔f{}", a + 1, b + 1));
    }
    other
}

/// Per phase, one row per node, plus one `all` row when the phase is
/// about the mesh forming again.
fn rows_as_run(scenario: &Scenario, real: &[Phase], proxy: &[Phase]) -> Vec<Row> {
    let title = format!("{} ({})", scenario.title, scenario.tolerance.describe());
    let mut rows = Vec::new();
    if real.len() != proxy.len() {
        rows.push(Row {
            scenario: title,
            phase: "-",
            node: "all".to_owned(),
            real: format!("{} phases", real.len()),
            proxy: format!("{} phases", proxy.len()),
            problems: vec!["different phases".to_owned()],
            swapped: None,
        });
        return rows;
    }
    for (r, p) in real.iter().zip(proxy) {
        for node in 0..r.downs.len() {
            let me = format!("f{}", node + 1);
            let r_pings: Vec<&Ping> = r.pings.iter().filter(|x| x.from == me).collect();
            let p_pings: Vec<&Ping> = p.pings.iter().filter(|x| x.from == me).collect();
            let mut problems = compare_downs(&r.downs[node], &p.downs[node], scenario.tolerance);
            if r.views[node] != p.views[node] {
                problems.push(format!(
                    "{} vs REAL {}",
                    describe_view(&p.views[node]),
                    describe_view(&r.views[node])
                ));
            }
            problems.extend(compare_pings(&r_pings, &p_pings));
            let cell = |phase: &Phase, pings: &[&Ping]| {
                let mut parts = vec![describe_downs(&phase.downs[node])];
                if !pings.is_empty() {
                    parts.push(describe_pings(pings));
                }
                parts.push(describe_view(&phase.views[node]));
                parts.join(" · ")
            };
            rows.push(Row {
                scenario: title.clone(),
                phase: r.name,
                node: me,
                real: cell(r, &r_pings),
                proxy: cell(p, &p_pings),
                problems,
                swapped: None,
            });
        }
        if !r.pings.is_empty() {
            let mesh = |m: Option<i64>| match m {
                Some(ms) => format!("whole again at {}", secs(ms)),
                None => "not whole".to_owned(),
            };
            let mut problems = Vec::new();
            match (r.mesh_ms, p.mesh_ms) {
                (Some(rm), Some(pm)) => {
                    let allowed = Tolerance::Relative.allowed_ms(rm);
                    if (pm - rm).abs() > allowed {
                        problems.push(format!(
                            "mesh at {} vs REAL {} (allowed ±{})",
                            secs(pm),
                            secs(rm),
                            secs(allowed)
                        ));
                    }
                }
                (None, None) => {}
                (rm, pm) => problems.push(format!("{} vs REAL {}", mesh(pm), mesh(rm))),
            }
            rows.push(Row {
                scenario: title.clone(),
                phase: r.name,
                node: "all".to_owned(),
                real: mesh(r.mesh_ms),
                proxy: mesh(p.mesh_ms),
                problems,
                swapped: None,
            });
        }
    }
    rows
}

/// The markdown table of every row.
pub fn table(rows: &[Row]) -> String {
    let mut out = String::from(
        "| scenario | phase | node | REAL (iptables/tc, OTP epmd) | epmdpxy (ctl --at) | same? |\n\
         |---|---|---|---|---|---|\n",
    );
    let mut last_scenario = "";
    for row in rows {
        let scenario = if row.scenario == last_scenario {
            ""
        } else {
            row.scenario.as_str()
        };
        last_scenario = &row.scenario;
        let verdict = if row.problems.is_empty() {
            "yes".to_owned()
        } else {
            format!("**no**: {}", row.problems.join("; "))
        };
        let proxy = match &row.swapped {
            Some(swap) => format!("({swap}) {}", row.proxy),
            None => row.proxy.clone(),
        };
        let cells = [scenario, row.phase, &row.node, &row.real, &proxy, &verdict];
        out.push('|');
        for cell in cells {
            // A `|` inside a cell (`cut f1 | f2`) would end it.
            out.push_str(&format!(" {} |", cell.replace('|', "\\|")));
        }
        out.push('\n');
    }
    out
}
