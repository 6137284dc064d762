//! Fault commands: a [`Change`] goes through the partition's door
//! ([`crate::partition::Faults::apply`]: checked and applied whole, under
//! one write lock), then the event (so watchers see a cause before its
//! effects), then its effects on the live links — a cut waits for writes
//! in progress, a `reset` closes links — then the reply that says what
//! happened: how many live links the fault now holds or shapes, and which
//! it cannot cover because an end is not known. The control session and
//! the chaos runner both come through here.

use std::sync::Arc;

use super::reply::Reply;
use super::room::Control;
use crate::base::sync::lock;
use crate::base::words::{agree, count};
use crate::events::Event;
use crate::partition::rules::Target;
use crate::partition::shapes::{self, Layout, Shape};
use crate::partition::{Applied, Change, ChangeKind, Islands, Pattern, Refused};
use crate::proxy::link::{Direction, Link};

/// Applies `change`; the reply says what it covered, or why nothing was
/// applied.
pub fn change(control: &Control, change: &Change) -> Reply {
    apply(control, change).unwrap_or_else(|refused| Reply::err(refused.to_string()))
}

/// Applies `change`; `Err` when the door refused it (nothing applied).
pub fn apply(control: &Control, change: &Change) -> Result<Reply, Refused> {
    let known = control.known_nodes();
    let applied = control.faults.apply(change, &known)?;
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
        Change::Isolate(nodes) if not_all(nodes) => Some("some were isolated already"),
        Change::Rejoin(nodes) if not_all(nodes) => Some("some were not isolated"),
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
    text.push_str(&coverage(control, change));
    if matches!(change, Change::Cut(_)) {
        text.push_str(&stuck_note(stuck));
    }
    text
}

/// ` (N live links held)` for a fault that holds or shapes links, with
/// the live links it names an end of but cannot cover because their
/// initiator is unknown; empty for other changes.
fn coverage(control: &Control, change: &Change) -> String {
    let (verb, shapes) = match change {
        Change::Cut(_) | Change::Isolate(_) | Change::Layout(_) => ("held", false),
        Change::Delay(..) | Change::Throttle(..) => ("shaped", true),
        _ => return String::new(),
    };
    // The change alone, on the exempt nodes in force: what it covers.
    let mut alone = control.faults.snapshot();
    alone.heal();
    if alone.apply(change, &control.known_nodes()).is_err() {
        return String::new();
    }
    let covers = |link: &Link| {
        [Direction::Up, Direction::Down]
            .into_iter()
            .any(|direction| {
                if shapes {
                    !link.shaped_by(&alone, direction).is_none()
                } else {
                    link.held_by(&alone, direction)
                }
            })
    };
    let links = control.proxy.links.snapshot();
    let covered = links.iter().filter(|link| covers(link)).count();
    let missed = uncoverable(change, links.iter().filter(|link| !covers(link)));
    format!(
        " ({} {verb}{})",
        count(covered, "live link"),
        missed_note(&missed, verb)
    )
}

/// The links among `links` that `change` may concern but cannot cover:
/// their initiator could not be learnt, and their target is named (any
/// such link may be an isolated node's).
fn uncoverable<'l>(change: &Change, links: impl Iterator<Item = &'l Arc<Link>>) -> Vec<String> {
    let named: Vec<Pattern> = match change {
        Change::Cut(target) => target.patterns().into_iter().cloned().collect(),
        Change::Delay(islands, _) | Change::Throttle(islands, _) | Change::Reset(islands) => {
            islands.iter().flatten().cloned().collect()
        }
        Change::Layout(layout) => layout.islands().into_iter().flatten().flatten().collect(),
        _ => Vec::new(),
    };
    let isolate = matches!(change, Change::Isolate(_));
    links
        .filter(|link| link.initiator_unknowable())
        .filter(|link| isolate || named.iter().any(|p| p.matches(link.target())))
        .map(|link| {
            format!(
                "{} ({} -> {})",
                link.id,
                link.initiator_label(),
                link.target()
            )
        })
        .collect()
}

/// `; cannot hold link 7 (unknown -> b): its initiator is unknown`.
fn missed_note(missed: &[String], verb: &str) -> String {
    let action = match verb {
        "held" => "hold",
        "shaped" => "shape",
        _ => "reset",
    };
    match missed {
        [] => String::new(),
        [one] => format!("; cannot {action} link {one}: its initiator is unknown"),
        many => format!(
            "; cannot {action} links {}: their initiators are unknown",
            many.join(", ")
        ),
    }
}

/// Says how many held links could not be confirmed quiet.
fn stuck_note(stuck: usize) -> String {
    if stuck == 0 {
        return String::new();
    }
    format!(
        " ({} {} mid-write to a receiver that does not read)",
        count(stuck, "link"),
        agree(stuck, "was", "were")
    )
}

/// `reset`: the live links between the islands are reset, each end when
/// it next sends (a blocked sender at once), as a firewall rejecting with
/// TCP resets would. Announced first, so watchers see the cause before its
/// effects (the `link-close` events).
fn reset(control: &Control, change: &Change, islands: &Islands) -> Reply {
    let doomed = control.proxy.links_across(islands);
    let text = change.to_string();
    let marked = doomed.len();
    control.events.publish(&Event::FaultApplied {
        text: text.clone(),
        links: Some(marked),
    });
    let ids: Vec<u64> = doomed.iter().map(|link| link.id).collect();
    for link in doomed {
        link.gates().reset_on_next_send();
    }
    control.faults.changes().bump();
    let others = control.proxy.links.snapshot();
    let spared = others.iter().filter(|link| !ids.contains(&link.id));
    let missed = missed_note(&uncoverable(change, spared), "reset");
    let what = count(marked, "link");
    Reply::ok(format!(
        "{text} ({what} reset, each end as it next sends{missed})"
    ))
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
    let covered = coverage(control, &Change::Layout(layout.clone()));
    let lines = layout.cut_lines();
    if layout.shape == Shape::Ring {
        let head = format!("ring: {}{covered}{stuck}", count(lines.len(), "cut"));
        return Reply::ok_with(head, lines);
    }
    let head = match &layout.bridge {
        Some(bridge) => format!("{} {bridge}", layout.shape),
        None => layout.shape.to_string(),
    };
    Reply::ok(format!("{head}: {}{covered}{stuck}", lines.join("; ")))
}
