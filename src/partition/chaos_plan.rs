//! The chaos planner: what each step of a `chaos start` run applies,
//! decided by [`Planner`] as a pure function of the run's seed, the step's
//! node list (registered, not exempt, sorted) and the menu of shapes and
//! faults ([`ChaosConfig`]). The same seed and node lists give the same
//! steps, so a failing run replays (docs/shapes-and-chaos.md). The runner
//! that applies the steps lives in the control room.

use std::fmt;
use std::time::Duration;

use super::change::Change;
use super::names::Pattern;
use super::rules::{format_duration, Delay, Rate};
use super::shapes::{cut_islands_patterns, layout, Shape, CHAOS_SHAPES};
use crate::base::rng::Rng;
use crate::base::words::agree;

/// A fault `chaos` can apply besides the shapes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChaosFault {
    /// `delay` random halves by 100–500 ms (jitter half of it).
    Delay,
    /// `throttle` random halves to 8, 64 or 512 kbps.
    Throttle,
    /// `reset` the live links between random halves.
    Reset,
    /// `isolate` one random node.
    Isolate,
}

pub const CHAOS_FAULTS: &[(&str, ChaosFault)] = &[
    ("delay", ChaosFault::Delay),
    ("throttle", ChaosFault::Throttle),
    ("reset", ChaosFault::Reset),
    ("isolate", ChaosFault::Isolate),
];

impl ChaosFault {
    pub fn name(self) -> &'static str {
        CHAOS_FAULTS
            .iter()
            .find(|(_, fault)| *fault == self)
            .map_or("?", |(name, _)| name)
    }
}

/// One item of the menu a step draws from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    Shape(Shape),
    Fault(ChaosFault),
}

/// How a chaos run goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChaosConfig {
    /// `None`: drawn from the session's generator when the run starts.
    pub seed: Option<u64>,
    /// A step starts this often.
    pub every: Duration,
    /// How long each step's fault is held before the heal.
    pub hold: Duration,
    pub shapes: Vec<Shape>,
    pub faults: Vec<ChaosFault>,
}

/// Shortest `every`.
pub const MIN_EVERY: Duration = Duration::from_millis(100);

impl Default for ChaosConfig {
    fn default() -> ChaosConfig {
        ChaosConfig {
            seed: None,
            every: Duration::from_secs(5),
            hold: Duration::from_secs(2),
            shapes: CHAOS_SHAPES
                .iter()
                .map(|(_, shape)| shape.clone())
                .collect(),
            faults: Vec::new(),
        }
    }
}

impl ChaosConfig {
    /// The menu: shapes first, then faults, in the order given.
    pub fn actions(&self) -> Vec<Action> {
        let shapes = self.shapes.iter().cloned().map(Action::Shape);
        shapes
            .chain(self.faults.iter().copied().map(Action::Fault))
            .collect()
    }
}

/// The arguments of `chaos start` that recreate this run.
impl fmt::Display for ChaosConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(seed) = self.seed {
            write!(f, "seed {seed} ")?;
        }
        write!(
            f,
            "every {} for {}",
            format_duration(self.every),
            format_duration(self.hold)
        )?;
        if !self.shapes.is_empty() {
            let names: Vec<&str> = self.shapes.iter().filter_map(Shape::chaos_name).collect();
            write!(f, " shapes {}", names.join(","))?;
        }
        if !self.faults.is_empty() {
            let names: Vec<&str> = self.faults.iter().map(|fault| fault.name()).collect();
            write!(f, " faults {}", names.join(","))?;
        }
        Ok(())
    }
}

/// One step of a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    pub number: u64,
    /// The nodes it was planned over (sorted).
    pub nodes: Vec<String>,
    /// `split one`, `bridge`, `delay`...
    pub action: String,
    /// What to apply, or why nothing fits these nodes.
    pub plan: Result<Change, String>,
}

impl Step {
    /// The `watch` event text (after the `chaos-step` kind).
    pub fn event_text(&self) -> String {
        let head = format!(
            "step={} nodes={} action=\"{}\"",
            self.number,
            self.nodes.join(","),
            self.action
        );
        match &self.plan {
            Ok(change) => format!("{head} apply=\"{change}\""),
            Err(why) => format!("{head} skipped=\"{why}\""),
        }
    }
}

/// Decides the steps of a run from its seed. Pure: the same seed, menu and
/// node lists give the same steps.
pub struct Planner {
    rng: Rng,
    actions: Vec<Action>,
    steps: u64,
}

impl Planner {
    pub fn new(seed: u64, config: &ChaosConfig) -> Planner {
        Planner {
            rng: Rng::new(seed),
            actions: config.actions(),
            steps: 0,
        }
    }

    /// The next step over `nodes`.
    pub fn next(&mut self, nodes: &[String]) -> Step {
        self.steps += 1;
        let mut nodes = nodes.to_vec();
        nodes.sort();
        nodes.dedup();
        let Some(action) = self
            .actions
            .get(self.rng.below(self.actions.len()))
            .cloned()
        else {
            return Step {
                number: self.steps,
                nodes,
                action: "nothing".to_owned(),
                plan: Err("no shapes or faults to choose from".to_owned()),
            };
        };
        let (name, plan) = match &action {
            Action::Shape(shape) => (
                shape.to_string(),
                layout(shape, &nodes, &mut self.rng).map(Change::Layout),
            ),
            Action::Fault(fault) => (
                fault.name().to_owned(),
                plan_fault(*fault, &nodes, &mut self.rng),
            ),
        };
        Step {
            number: self.steps,
            nodes,
            action: name,
            plan,
        }
    }
}

fn plan_fault(fault: ChaosFault, nodes: &[String], rng: &mut Rng) -> Result<Change, String> {
    if nodes.len() < 2 {
        return Err(format!(
            "{} needs at least 2 nodes that are not exempt; there {} {}",
            fault.name(),
            agree(nodes.len(), "is", "are"),
            nodes.len()
        ));
    }
    // With 2 nodes or more (checked above) neither of the two `else`
    // branches below is taken.
    if fault == ChaosFault::Isolate {
        let Some(node) = rng.choose(nodes) else {
            return Err("isolate: no node to isolate".to_owned());
        };
        return Ok(Change::Isolate(vec![Pattern::Alive(node.clone())]));
    }
    let halves = layout(&Shape::RandomHalves, nodes, rng)?;
    let Some(cut) = halves.cuts.first() else {
        return Err(format!("{}: random halves gave no cut", fault.name()));
    };
    let islands = cut_islands_patterns(cut);
    Ok(match fault {
        ChaosFault::Delay => {
            let base = Duration::from_millis(100 * (1 + rng.below(5) as u64));
            Change::Delay(
                islands,
                Delay {
                    base,
                    jitter: base / 2,
                },
            )
        }
        ChaosFault::Throttle => {
            let kbps: u64 = match rng.below(3) {
                0 => 8,
                1 => 64,
                _ => 512,
            };
            Change::Throttle(
                islands,
                Rate {
                    bits_per_second: kbps * 1000,
                },
            )
        }
        ChaosFault::Reset | ChaosFault::Isolate => Change::Reset(islands),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("n{i}")).collect()
    }

    fn everything() -> ChaosConfig {
        ChaosConfig {
            faults: CHAOS_FAULTS.iter().map(|(_, fault)| *fault).collect(),
            ..ChaosConfig::default()
        }
    }

    fn run_plan(seed: u64, config: &ChaosConfig, nodes: &[String], steps: usize) -> Vec<Step> {
        let mut planner = Planner::new(seed, config);
        (0..steps).map(|_| planner.next(nodes)).collect()
    }

    #[test]
    fn same_seed_and_nodes_give_the_same_steps() {
        let config = everything();
        for n in 1..=9 {
            let nodes = names(n);
            let a = run_plan(77, &config, &nodes, 40);
            assert_eq!(a, run_plan(77, &config, &nodes, 40), "{n} nodes");
            assert_ne!(a, run_plan(78, &config, &nodes, 40), "{n} nodes");
            for (i, step) in a.iter().enumerate() {
                assert_eq!(step.number, i as u64 + 1);
                assert_eq!(step.nodes, nodes);
            }
        }
    }

    #[test]
    fn every_action_comes_up_and_applies_only_to_the_given_nodes() {
        let config = everything();
        let nodes = names(5);
        let steps = run_plan(1, &config, &nodes, 300);
        let mut seen: Vec<String> = steps.iter().map(|s| s.action.clone()).collect();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 10, "6 shapes and 4 faults: {seen:?}");
        for step in &steps {
            let text = step
                .plan
                .as_ref()
                .expect("5 nodes fit every action")
                .to_string();
            for word in text.split([' ', ',', ';']) {
                if word.starts_with('n') && word.len() == 2 {
                    assert!(nodes.contains(&word.to_owned()), "{text}");
                }
            }
        }
    }

    #[test]
    fn too_few_nodes_are_skipped_with_a_reason() {
        let steps = run_plan(3, &everything(), &names(1), 20);
        assert!(steps.iter().all(|s| s.plan.is_err()));
        assert!(steps[0].event_text().contains("skipped=\""));
        let none = ChaosConfig {
            shapes: Vec::new(),
            ..ChaosConfig::default()
        };
        assert!(run_plan(3, &none, &names(5), 1)[0].plan.is_err());
    }

    #[test]
    fn config_prints_as_the_command_that_recreates_it() {
        let config = ChaosConfig {
            seed: Some(42),
            every: Duration::from_millis(1500),
            hold: Duration::from_secs(1),
            shapes: vec![Shape::Halves, Shape::Ring],
            faults: vec![ChaosFault::Reset],
        };
        let text = config.to_string();
        assert_eq!(
            text,
            "seed 42 every 1500ms for 1s shapes halves,ring faults reset"
        );
    }

    #[test]
    fn event_text_names_nodes_action_and_commands() {
        let config = ChaosConfig {
            shapes: vec![Shape::Halves],
            ..ChaosConfig::default()
        };
        let step = Planner::new(5, &config).next(&names(4));
        assert_eq!(
            step.event_text(),
            "step=1 nodes=n1,n2,n3,n4 action=\"split halves\" apply=\"cut n1,n2 | n3,n4\""
        );
    }
}
