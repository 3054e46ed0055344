//! The fake HubSpot as a process, for `bench/hubspot/run.sh`:
//! `fake_hubspot TOKEN CONTACTS` seeds CONTACTS contacts, prints its base URL on one line and
//! serves until killed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use hushflow_test_support::hubspot::{FakeHubSpot, now_ms};

fn main() {
    let mut args = std::env::args().skip(1);
    let token = args.next().expect("usage: fake_hubspot TOKEN CONTACTS");
    let contacts: usize = args.next().map_or(0, |n| n.parse().expect("a number"));
    let fake = FakeHubSpot::start(&token);
    {
        let mut s = fake.state();
        let stamp = now_ms() - 3_600_000;
        for i in 0..contacts {
            let email = format!("person{i}@example.com");
            let first = format!("First{i}");
            let last = format!("Last{i}");
            s.insert(
                &[
                    ("email", &email),
                    ("firstname", &first),
                    ("lastname", &last),
                    ("phone", "+4930901820"),
                    ("company", "Example GmbH"),
                ],
                stamp,
            );
        }
    }
    println!("{}", fake.url);
    loop {
        std::thread::sleep(std::time::Duration::from_secs(3600));
    }
}
