//! `chaos start`: a background thread that applies a random shape or
//! fault, holds it, heals, waits, and repeats until `chaos stop`.
//!
//! What each step does is decided by [`Planner`], a pure function of the
//! run's seed, the step's node list (registered, not exempt, sorted) and
//! the menu of shapes and faults. Every step is published as a `watch`
//! event and logged with that node list and the exact commands applied, so
//! a failing run can be replayed: same seed, same nodes, same steps (see
//! docs/shapes-and-chaos.md).
//!
//! Events, in order, per run:
//!
//! ```text
//! chaos-start seed 99 every 5s for 2s shapes halves,ring faults delay
//! chaos-step step=1 nodes=a,b,c action="ring" apply="cut a | c; ..."
//! chaos-heal step=1
//! ...
//! chaos-stop steps=7
//! ```

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::command::Command;
use super::server;
use crate::partition::shapes::{layout, CutIslands, Layout, Rng, Shape, CHAOS_SHAPES};
use crate::partition::{format_duration, Delay, Islands, Pattern, Rate};
use crate::shared::Shared;
use crate::sync::lock;
use crate::{log_info, log_warn};

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

/// What a step applies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Planned {
    /// A shape's cuts.
    Layout(Layout),
    /// One fault command (`delay`, `throttle`, `reset`, `isolate`).
    Fault(Command),
}

impl Planned {
    /// The commands, `; `-separated, as the control port reads them.
    pub fn text(&self) -> String {
        match self {
            Planned::Layout(layout) => layout.cut_lines().join("; "),
            Planned::Fault(command) => command.to_string(),
        }
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
    pub plan: Result<Planned, String>,
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
            Ok(planned) => format!("{head} apply=\"{}\"", planned.text()),
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
                layout(shape, &nodes, &mut self.rng).map(Planned::Layout),
            ),
            Action::Fault(fault) => (
                fault.name().to_owned(),
                plan_fault(*fault, &nodes, &mut self.rng).map(Planned::Fault),
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

fn patterns(islands: &CutIslands) -> Islands {
    islands
        .iter()
        .map(|island| island.iter().cloned().map(Pattern::Alive).collect())
        .collect()
}

fn plan_fault(fault: ChaosFault, nodes: &[String], rng: &mut Rng) -> Result<Command, String> {
    if nodes.len() < 2 {
        return Err(format!(
            "{} needs at least 2 nodes that are not exempt; there are {}",
            fault.name(),
            nodes.len()
        ));
    }
    if fault == ChaosFault::Isolate {
        let node = nodes[rng.below(nodes.len())].clone();
        return Ok(Command::Isolate(vec![Pattern::Alive(node)]));
    }
    let halves = layout(&Shape::RandomHalves, nodes, rng)?;
    let islands = patterns(&halves.cuts[0]);
    Ok(match fault {
        ChaosFault::Delay => {
            let base = Duration::from_millis(100 * (1 + rng.below(5) as u64));
            Command::Delay(
                islands,
                Delay {
                    base,
                    jitter: base / 2,
                },
            )
        }
        ChaosFault::Throttle => {
            const KBPS: [u64; 3] = [8, 64, 512];
            Command::Throttle(
                islands,
                Rate {
                    bits_per_second: KBPS[rng.below(KBPS.len())] * 1000,
                },
            )
        }
        ChaosFault::Reset | ChaosFault::Isolate => Command::Reset(islands),
    })
}

/// A stop request a sleeping run wakes up for.
#[derive(Default)]
struct StopSignal {
    stopped: Mutex<bool>,
    wake: Condvar,
}

impl StopSignal {
    fn stop(&self) {
        *lock(&self.stopped) = true;
        self.wake.notify_all();
    }

    /// Sleeps until `when`; true if stopped meanwhile (or before).
    fn sleep_until(&self, when: Instant) -> bool {
        let mut stopped = lock(&self.stopped);
        loop {
            let now = Instant::now();
            if *stopped || now >= when {
                return *stopped;
            }
            stopped = self
                .wake
                .wait_timeout(stopped, when - now)
                .map(|(guard, _)| guard)
                .unwrap_or_else(|poisoned| poisoned.into_inner().0);
        }
    }
}

struct Running {
    /// With the seed filled in.
    config: ChaosConfig,
    stop: Arc<StopSignal>,
    steps: Arc<AtomicU64>,
    thread: JoinHandle<()>,
}

/// The chaos run, if one is going (one at a time per proxy).
#[derive(Default)]
pub struct ChaosSlot {
    running: Mutex<Option<Running>>,
}

impl ChaosSlot {
    pub fn is_running(&self) -> bool {
        lock(&self.running).is_some()
    }
}

/// `chaos start`.
pub fn start(shared: &Arc<Shared>, config: &ChaosConfig) -> Vec<String> {
    let mut slot = lock(&shared.chaos.running);
    if let Some(running) = slot.as_ref() {
        return vec![format!(
            "ERR chaos is running already (chaos start {}); chaos stop first",
            running.config
        )];
    }
    let mut config = config.clone();
    let seed = *config
        .seed
        .get_or_insert_with(|| lock(&shared.seed).rng.next_u64() % 1_000_000_000_000);
    let stop = Arc::new(StopSignal::default());
    let steps = Arc::new(AtomicU64::new(0));
    log_warn!("chaos: start {config}");
    shared.events.publish(&format!("chaos-start {config}"));
    let (run_shared, run_config, run_stop, run_steps) = (
        Arc::clone(shared),
        config.clone(),
        Arc::clone(&stop),
        Arc::clone(&steps),
    );
    let thread = std::thread::Builder::new()
        .name("chaos".to_owned())
        .spawn(move || run(&run_shared, &run_config, seed, &run_stop, &run_steps));
    match thread {
        Ok(thread) => {
            let reply = format!("OK chaos start {config}");
            *slot = Some(Running {
                config,
                stop,
                steps,
                thread,
            });
            vec![reply]
        }
        Err(err) => {
            shared.events.publish("chaos-stop steps=0");
            vec![format!("ERR cannot start the chaos thread: {err}")]
        }
    }
}

/// `chaos stop`: stops the run (waiting for its thread) and heals.
pub fn stop(shared: &Arc<Shared>) -> Vec<String> {
    let running = lock(&shared.chaos.running).take();
    let Some(running) = running else {
        server::execute(shared, &Command::Heal);
        return vec!["OK chaos was not running; healed".to_owned()];
    };
    running.stop.stop();
    if running.thread.join().is_err() {
        log_warn!("chaos: the run's thread panicked");
        server::execute(shared, &Command::Heal);
    }
    let steps = running.steps.load(Ordering::SeqCst);
    let plural = if steps == 1 { "" } else { "s" };
    vec![format!(
        "OK chaos stopped after {steps} step{plural}; healed"
    )]
}

/// Bare `chaos`: whether a run is going.
pub fn state(shared: &Shared) -> Vec<String> {
    match lock(&shared.chaos.running).as_ref() {
        Some(running) => vec![format!(
            "OK chaos running: chaos start {} (step {})",
            running.config,
            running.steps.load(Ordering::SeqCst)
        )],
        None => vec!["OK chaos is not running".to_owned()],
    }
}

fn run(
    shared: &Arc<Shared>,
    config: &ChaosConfig,
    seed: u64,
    stop: &StopSignal,
    steps: &AtomicU64,
) {
    let mut planner = Planner::new(seed, config);
    loop {
        let began = Instant::now();
        let step = planner.next(&server::shape_nodes(shared));
        steps.store(step.number, Ordering::SeqCst);
        let text = step.event_text();
        log_info!("chaos: {text}");
        shared.events.publish(&format!("chaos-step {text}"));
        if let Ok(planned) = &step.plan {
            let reply = match planned {
                Planned::Layout(layout) => server::apply_layout(shared, layout),
                Planned::Fault(command) => server::execute(shared, command),
            };
            // e.g. a node exempted between planning and applying
            if let Some(refusal) = reply.iter().find(|line| line.starts_with("ERR")) {
                log_warn!("chaos: step {} was refused: {refusal}", step.number);
                shared.events.publish(&format!(
                    "chaos-error step={} reply=\"{refusal}\"",
                    step.number
                ));
            }
        }
        let stopped = stop.sleep_until(began + config.hold);
        server::execute(shared, &Command::Heal);
        shared
            .events
            .publish(&format!("chaos-heal step={}", step.number));
        if stopped || stop.sleep_until(began + config.every) {
            break;
        }
    }
    // Heal again if a manual fault came in after the last heal.
    if !crate::sync::read(&shared.partitions).is_empty() {
        server::execute(shared, &Command::Heal);
    }
    let total = steps.load(Ordering::SeqCst);
    log_warn!("chaos: stopped after {total} steps (seed {seed}); healed");
    shared.events.publish(&format!("chaos-stop steps={total}"));
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
            let planned = step.plan.as_ref().expect("5 nodes fit every action");
            let text = planned.text();
            for word in text.split([' ', ',', ';']) {
                if word.starts_with('n') && word.len() == 2 {
                    assert!(nodes.contains(&word.to_owned()), "{text}");
                }
            }
            // What is applied parses back as control commands.
            for line in text.split("; ") {
                let command = super::super::command::parse(line)
                    .unwrap_or_else(|why| panic!("{line}: {why}"));
                assert_eq!(command.to_string(), line);
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
        assert_eq!(
            super::super::command::parse(&format!("chaos start {text}")),
            Ok(Command::ChaosStart(config))
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

    #[test]
    fn stop_signal_wakes_a_sleeper() {
        let signal = Arc::new(StopSignal::default());
        assert!(!signal.sleep_until(Instant::now() + Duration::from_millis(5)));
        let other = Arc::clone(&signal);
        let waker = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            other.stop();
        });
        let began = Instant::now();
        assert!(signal.sleep_until(Instant::now() + Duration::from_secs(30)));
        assert!(began.elapsed() < Duration::from_secs(10));
        waker.join().expect("waker");
    }
}
