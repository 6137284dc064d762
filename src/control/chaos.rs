//! `chaos start`: a background thread that applies a random shape or
//! fault, holds it, heals, waits, and repeats until `chaos stop`.
//!
//! What each step does is decided by the pure planner
//! ([`crate::partition::chaos_plan::Planner`]); this runner applies its
//! steps through the same door as any command (`execute.rs`). Every step is
//! published as a `watch` event and logged with its node list and the
//! exact commands applied, so a failing run can be replayed: same seed,
//! same nodes, same steps (see docs/shapes-and-chaos.md).
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

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use super::chaos_slot::{Running, StopSignal};
use super::execute;
use super::reply::Reply;
use super::room::Control;
use crate::base::sync::lock;
use crate::base::words::count;
use crate::events::Event;
use crate::log_warn;
use crate::partition::chaos_plan::{ChaosConfig, Planner};
use crate::partition::Change;

/// `chaos start`.
pub fn start(control: &Arc<Control>, config: &ChaosConfig) -> Reply {
    let mut slot = control.chaos.lock();
    if let Some(running) = slot.as_ref() {
        return Reply::err(format!(
            "chaos is running already (chaos start {}); chaos stop first",
            running.config
        ));
    }
    let mut config = config.clone();
    let seed = *config
        .seed
        .get_or_insert_with(|| lock(&control.seed).rng.next_u64() % 1_000_000_000_000);
    let stop = Arc::new(StopSignal::default());
    let steps = Arc::new(AtomicU64::new(0));
    control.events.publish(&Event::ChaosStart {
        config: config.to_string(),
    });
    let (run_control, run_config, run_stop, run_steps) = (
        Arc::clone(control),
        config.clone(),
        Arc::clone(&stop),
        Arc::clone(&steps),
    );
    let thread = std::thread::Builder::new()
        .name("chaos".to_owned())
        .spawn(move || run(&run_control, &run_config, seed, &run_stop, &run_steps));
    match thread {
        Ok(thread) => {
            let reply = Reply::ok(format!("chaos start {config}"));
            *slot = Some(Running {
                config,
                stop,
                steps,
                thread,
            });
            reply
        }
        Err(err) => {
            control.events.publish(&Event::ChaosStop { steps: 0, seed });
            Reply::err(format!("cannot start the chaos thread: {err}"))
        }
    }
}

/// `chaos stop`: stops the run (waiting for its thread) and heals.
pub fn stop(control: &Control) -> Reply {
    let running = control.chaos.lock().take();
    let Some(running) = running else {
        execute::change(control, &Change::Heal);
        return Reply::ok("chaos was not running; healed");
    };
    running.stop.stop();
    if running.thread.join().is_err() {
        log_warn!("chaos: the run's thread panicked");
        execute::change(control, &Change::Heal);
    }
    let steps = running.steps.load(Ordering::SeqCst);
    Reply::ok(format!(
        "chaos stopped after {}; healed",
        count(steps, "step")
    ))
}

/// Bare `chaos`: whether a run is going.
pub fn state(control: &Control) -> Reply {
    match control.chaos.lock().as_ref() {
        Some(running) => Reply::ok(format!(
            "chaos running: chaos start {} (step {})",
            running.config,
            running.steps.load(Ordering::SeqCst)
        )),
        None => Reply::ok("chaos is not running"),
    }
}

/// The run's thread: step, hold, heal, wait, until stopped; ends healed.
fn run(control: &Control, config: &ChaosConfig, seed: u64, stop: &StopSignal, steps: &AtomicU64) {
    let mut planner = Planner::new(seed, config);
    loop {
        let began = Instant::now();
        let step = planner.next(&control.shape_nodes());
        steps.store(step.number, Ordering::SeqCst);
        let text = step.event_text();
        control.events.publish(&Event::ChaosStep { text });
        if let Ok(change) = &step.plan {
            // e.g. a node exempted between planning and applying
            if let Err(refused) = execute::apply(control, change) {
                control.events.publish(&Event::ChaosError {
                    step: step.number,
                    reply: format!("ERR {refused}"),
                });
            }
        }
        let stopped = stop.sleep_until(began + config.hold);
        execute::change(control, &Change::Heal);
        control
            .events
            .publish(&Event::ChaosHeal { step: step.number });
        if stopped || stop.sleep_until(began + config.every) {
            break;
        }
    }
    // Heal again if a manual fault came in after the last heal.
    if !control.faults.read().is_empty() {
        execute::change(control, &Change::Heal);
    }
    let steps = steps.load(Ordering::SeqCst);
    control.events.publish(&Event::ChaosStop { steps, seed });
}
