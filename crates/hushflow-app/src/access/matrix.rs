//! The permission matrix as a Markdown table, for `docs/access.md` (a test keeps the document
//! equal to [`Role::lowest_with`], so the two cannot drift apart).

use super::{Permission, Role};

/// The matrix as a Markdown table: a row per permission, a column per role, `yes` where the
/// role holds it.
pub fn matrix_markdown() -> String {
    let mut table = String::from("| permission |");
    for role in Role::ALL {
        table.push_str(&format!(" {} |", role.title()));
    }
    table.push_str("\n| --- |");
    for _ in Role::ALL {
        table.push_str(" --- |");
    }
    table.push('\n');
    for permission in Permission::ALL {
        table.push_str(&format!("| `{permission}` |"));
        for role in Role::ALL {
            table.push_str(if role.permits(permission) {
                " yes |"
            } else {
                " no |"
            });
        }
        table.push('\n');
    }
    table
}
