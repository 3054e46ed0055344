//! A load generator for `hushflow serve` (bench/serve/run.sh): CLIENTS threads, each with its
//! own keep-alive connection, call the API's read routes round-robin for SECONDS, then the
//! latencies per route and overall (p50, p90, p99, max), the request rate and the errors.
//!
//! usage: load BASE_URL TOKEN CLIENTS SECONDS PATH...
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 6 {
        eprintln!("usage: load BASE_URL TOKEN CLIENTS SECONDS PATH...");
        std::process::exit(2);
    }
    let base = args[1].clone();
    let token = args[2].clone();
    let clients: usize = args[3].parse().expect("CLIENTS");
    let seconds: u64 = args[4].parse().expect("SECONDS");
    let paths: Vec<String> = args[5..].to_vec();
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let threads: Vec<_> = (0..clients)
        .map(|i| {
            let (base, token, paths) = (base.clone(), token.clone(), paths.clone());
            std::thread::spawn(move || {
                let agent: ureq::Agent = ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .timeout_global(Some(Duration::from_secs(30)))
                    .build()
                    .into();
                let auth = format!("Bearer {token}");
                // (path index, microseconds, ok)
                let mut samples: Vec<(usize, u64, bool)> = Vec::new();
                let mut failures: Vec<String> = Vec::new();
                let mut n = i;
                while Instant::now() < deadline {
                    let k = n % paths.len();
                    n += 1;
                    let t = Instant::now();
                    let ok = match agent
                        .get(format!("{base}{}", paths[k]))
                        .header("Authorization", &auth)
                        .call()
                    {
                        Ok(mut r) => {
                            let status = r.status().as_u16();
                            let body = r.body_mut().read_to_string().unwrap_or_default();
                            if status != 200 {
                                failures.push(format!("{status} {}", body.trim()));
                            }
                            status == 200
                        }
                        Err(e) => {
                            failures.push(format!("transport: {e}"));
                            false
                        }
                    };
                    samples.push((k, t.elapsed().as_micros() as u64, ok));
                }
                (samples, failures)
            })
        })
        .collect();
    let mut all: Vec<(usize, u64, bool)> = Vec::new();
    let mut failures: std::collections::BTreeMap<String, usize> = Default::default();
    for t in threads {
        let (samples, failed) = t.join().expect("client thread");
        all.extend(samples);
        for f in failed {
            *failures.entry(f).or_default() += 1;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let errors = all.iter().filter(|s| !s.2).count();
    println!(
        "{clients} clients, {seconds} s: {} requests, {:.0} requests/s, {errors} errors",
        all.len(),
        all.len() as f64 / elapsed
    );
    println!("| route | requests | p50 ms | p90 ms | p99 ms | max ms |");
    println!("| --- | --- | --- | --- | --- | --- |");
    let row = |name: &str, mut lat: Vec<u64>| {
        lat.sort_unstable();
        println!(
            "| {name} | {} | {:.1} | {:.1} | {:.1} | {:.1} |",
            lat.len(),
            percentile(&lat, 0.50),
            percentile(&lat, 0.90),
            percentile(&lat, 0.99),
            percentile(&lat, 1.0)
        );
    };
    for (k, path) in paths.iter().enumerate() {
        row(
            &format!("`GET {path}`"),
            all.iter().filter(|s| s.0 == k).map(|s| s.1).collect(),
        );
    }
    row("all reads", all.iter().map(|s| s.1).collect());
    for (failure, n) in &failures {
        println!("error x{n}: {failure}");
    }
    if errors > 0 {
        std::process::exit(1);
    }
}
