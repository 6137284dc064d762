//! Fault commands: a [`Change`] goes through the partition's door
//! ([`crate::partition::Faults::apply`]: checked and applied whole, under
//! one write lock), then its effects on the live links follow — a cut
//! waits for writes in progress, a `reset` closes links — then the event,
//! then the reply that says what happened. The control session and the
//! chaos runner both come through here.

use super::reply::Reply;
use super::room::Control;
use crate::base::sync::lock;
use crate::events::Event;
use crate::partition::rules::Target;
use crate::partition::shapes::{self, Layout, Shape};
use crate::partition::{Applied, Change, ChangeKind, Islands, Pattern, Refused};

/// Applies `change`; the reply says what it covered, or why nothing was
/// applied.
pub fn change(control: &Control, change: &Change) -> Reply {
    apply(control, change).unwrap_or_else(|refused| Reply::err(refused.to_string()))
}

/// Applies `change`; `Err` when the door refused it (nothing applied).
pub fn apply(control: &Control, change: &Change) -> Result<Reply, Refused> {
    let applied = control.faults.apply(change)?;
    Ok(match change {
        Change::Reset(islands) => reset(control, change, islands),
        Change::Layout(layout) => layout_applied(control, layout),
        _ => {
            publish(control, change);
            let stuck = if change.may_hold() {
                control.proxy.drain_held()
            } else {
                0
            };
            Reply::ok(describe(control, change, applied, stuck))
        }
    })
}

/// `split ...`, `bridge`, `ring`: lays the shape out over the nodes now
/// registered, drawing from the proxy's seed, and applies it.
pub fn shape(control: &Control, shape: &Shape) -> Reply {
    let nodes = control.shape_nodes();
    let layout = shapes::layout(shape, &nodes, &mut lock(&control.seed).rng);
    match layout {
        Ok(layout) => change(control, &Change::Layout(layout)),
        Err(why) => Reply::err(why),
    }
}

fn publish(control: &Control, change: &Change) {
    let text = change.to_string();
    control.events.publish(&match change.kind() {
        ChangeKind::Applies => Event::FaultApplied { text, links: None },
        ChangeKind::Removes => Event::FaultRemoved { text },
        ChangeKind::Exempts => Event::ExemptChanged { text },
    });
}

/// The `OK` line of a change that stores (or removes) faults.
fn describe(control: &Control, change: &Change, applied: Applied, stuck: usize) -> String {
    let count = applied.count;
    let mut text = match change {
        Change::Heal => return "healed".to_owned(),
        _ => change.to_string(),
    };
    let not_all = |nodes: &[Pattern]| count < nodes.len();
    let note = match change {
        Change::Fix(_) if count == 0 => Some("no such cut was in force"),
        Change::Isolate(nodes) if not_all(nodes) => Some("some were isolated already"),
        Change::Rejoin(nodes) if not_all(nodes) => Some("some were not isolated"),
        Change::Clear(_) if count == 0 => Some("no delay or throttle was in force"),
        Change::Exempt(_) if count > 0 => Some("the faults that named it were removed"),
        Change::Unexempt(nodes) if not_all(nodes) => Some("some were not exempt"),
        _ => None,
    };
    let named: Vec<&Pattern> = match change {
        Change::Cut(target) => target.patterns(),
        Change::Isolate(nodes) | Change::Exempt(nodes) => nodes.iter().collect(),
        _ => Vec::new(),
    };
    let unregistered = control.unregistered(named.into_iter());
    if !unregistered.is_empty() {
        let names = unregistered.join(",");
        text.push_str(&format!(
            " (not registered yet: {names}; applies when they appear)"
        ));
    }
    if let Some(note) = note {
        text.push_str(&format!(" ({note})"));
    }
    if matches!(change, Change::Cut(_)) {
        text.push_str(&stuck_note(stuck));
    }
    text
}

/// Says how many held links could not be confirmed quiet.
fn stuck_note(stuck: usize) -> String {
    if stuck == 0 {
        return String::new();
    }
    format!(" ({stuck} links were mid-write to a receiver that does not read)")
}

/// `reset`: closes the live links between the islands now. Announced
/// before the links close, so watchers see the cause before its effects
/// (the `link-close` events).
fn reset(control: &Control, change: &Change, islands: &Islands) -> Reply {
    let doomed = control.proxy.links_across(islands);
    let text = change.to_string();
    let closed = doomed.len();
    control.events.publish(&Event::FaultApplied {
        text: text.clone(),
        links: Some(closed),
    });
    for link in doomed {
        link.close("reset by control");
    }
    control.faults.changes().bump();
    Reply::ok(format!("{text} ({closed} links closed)"))
}

/// A shape's cuts, applied: one event per cut; the reply names them
/// (`ring`: one per line).
fn layout_applied(control: &Control, layout: &Layout) -> Reply {
    for islands in layout.islands() {
        let text = Change::Cut(Target::Islands(islands)).to_string();
        control
            .events
            .publish(&Event::FaultApplied { text, links: None });
    }
    let stuck = stuck_note(control.proxy.drain_held());
    let lines = layout.cut_lines();
    if layout.shape == Shape::Ring {
        return Reply::ok_with(format!("ring: {} cuts{stuck}", lines.len()), lines);
    }
    let head = match &layout.bridge {
        Some(bridge) => format!("{} {bridge}", layout.shape),
        None => layout.shape.to_string(),
    };
    Reply::ok(format!("{head}: {}{stuck}", lines.join("; ")))
}
