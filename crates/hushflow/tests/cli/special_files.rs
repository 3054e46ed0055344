//! A sink's target that exists but is not a regular file (a device, a FIFO, a directory, or a
//! symlink to one) is refused, by validate and by run, and left as it was: hushflow never
//! replaces it with a file of results.

use crate::common::*;
use std::os::unix::fs::FileTypeExt;
use std::path::Path;

fn pipeline_to(sink: &str) -> String {
    format!(
        r#"
[pipeline]
name = "special"
key = "id"

[source]
type = "csv"
path = "data/contacts.csv"

[policy]
fields.id = "keep"

{sink}
"#
    )
}

fn mkfifo(path: &Path) {
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn special_files_at_a_sink_path_are_refused_and_left_alone() {
    let ws = Workspace::new();
    ws.write("data/contacts.csv", "id\n1\n2\n");
    std::fs::create_dir_all(ws.path("out")).unwrap();
    mkfifo(&ws.path("out/fifo"));
    // A link to /dev/null is followed (and refused), never replaced: /dev/null itself is never
    // a target here, since these tests may run as root.
    std::os::unix::fs::symlink("/dev/null", ws.path("out/null-link")).unwrap();
    std::fs::create_dir_all(ws.path("out/a-dir")).unwrap();

    for target in ["out/fifo", "out/null-link", "out/a-dir"] {
        for sink in [
            format!("[sink]\ntype = \"csv\"\npath = \"{target}\"\n"),
            format!("[sink]\ntype = \"jsonl\"\npath = \"{target}\"\n"),
            format!("[sink]\ntype = \"sqlite\"\npath = \"{target}\"\ntable = \"t\"\n"),
        ] {
            ws.write("p.toml", pipeline_to(&sink));
            for command in ["validate", "run"] {
                let r = ws.ok(&[command, "p.toml"], 2);
                assert!(
                    r.stderr.contains(target) && r.stderr.contains("not a regular file"),
                    "{command} {sink}: {}",
                    r.all()
                );
            }
        }
    }
    assert!(
        std::fs::symlink_metadata(ws.path("out/fifo"))
            .unwrap()
            .file_type()
            .is_fifo()
    );
    assert_eq!(
        std::fs::read_link(ws.path("out/null-link")).unwrap(),
        Path::new("/dev/null")
    );
    assert!(ws.path("out/a-dir").is_dir());
    assert!(
        std::fs::metadata("/dev/null")
            .unwrap()
            .file_type()
            .is_char_device()
    );

    // A regular file is replaced by the results.
    ws.write("out/old.csv", "stale\n");
    ws.write(
        "p.toml",
        pipeline_to(&CSV_SINK.replace("out/leads.csv", "out/old.csv")),
    );
    ws.ok(&["run", "p.toml"], 0);
    assert_eq!(
        std::fs::read_to_string(ws.path("out/old.csv")).unwrap(),
        "id\n1\n2\n"
    );
    // So is a symlink to a regular file: the link the pipeline names is replaced, and the file
    // it pointed to is left as it was (hushflow writes the path it was given, nowhere else).
    ws.write("elsewhere/kept.csv", "kept\n");
    std::os::unix::fs::symlink(ws.path("elsewhere/kept.csv"), ws.path("out/link.csv")).unwrap();
    ws.write(
        "p.toml",
        pipeline_to(&CSV_SINK.replace("out/leads.csv", "out/link.csv")),
    );
    ws.ok(&["run", "p.toml"], 0);
    let link = std::fs::symlink_metadata(ws.path("out/link.csv")).unwrap();
    assert!(link.file_type().is_file());
    assert_eq!(
        std::fs::read_to_string(ws.path("out/link.csv")).unwrap(),
        "id\n1\n2\n"
    );
    assert_eq!(
        std::fs::read_to_string(ws.path("elsewhere/kept.csv")).unwrap(),
        "kept\n"
    );
}
