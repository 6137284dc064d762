//! A control reply, built by the rooms' answers and rendered in one place:
//! `OK <head>` or `ERR <why>` on one line; for a multi-line command (see
//! [`super::command::Command::multi_line`]) the `OK` line is followed by
//! its data lines and `END`, added only here.

use super::command::END;

/// What a command answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    ok: bool,
    /// The first line without its `OK `/`ERR ` word.
    head: String,
    /// Data lines after the first (multi-line answers).
    body: Vec<String>,
}

impl Reply {
    /// `OK <head>`.
    pub fn ok(head: impl Into<String>) -> Reply {
        Reply::ok_with(head, Vec::new())
    }

    /// `OK <head>`, then `body`, one line each.
    pub fn ok_with(head: impl Into<String>, body: Vec<String>) -> Reply {
        Reply {
            ok: true,
            head: head.into(),
            body,
        }
    }

    /// `ERR <why>`.
    pub fn err(why: impl Into<String>) -> Reply {
        Reply {
            ok: false,
            head: why.into(),
            body: Vec::new(),
        }
    }

    pub fn is_ok(&self) -> bool {
        self.ok
    }

    /// The lines sent, without line endings. `multi_line` (the command's)
    /// adds `END` after an `OK` answer.
    pub fn lines(&self, multi_line: bool) -> Vec<String> {
        let word = if self.ok { "OK" } else { "ERR" };
        let mut lines = vec![format!("{word} {}", self.head)];
        if self.ok {
            lines.extend(self.body.iter().cloned());
            if multi_line {
                lines.push(END.to_owned());
            }
        }
        lines
    }

    /// The bytes sent: [`Reply::lines`], each ended with `\n`.
    pub fn render(&self, multi_line: bool) -> String {
        let mut text = self.lines(multi_line).join("\n");
        text.push('\n');
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn end_closes_only_multi_line_ok_answers() {
        let table = Reply::ok_with("2 faults", vec!["cut a | b".into(), "isolate c".into()]);
        assert_eq!(
            table.render(true),
            "OK 2 faults\ncut a | b\nisolate c\nEND\n"
        );
        assert_eq!(Reply::ok("healed").render(false), "OK healed\n");
        assert_eq!(
            Reply::err("no such thing").render(true),
            "ERR no such thing\n"
        );
        assert!(!Reply::err("x").is_ok());
    }
}
