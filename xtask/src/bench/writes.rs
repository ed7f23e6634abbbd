//! What a traced map write costs against a traced read, with every probe in
//! (`--exact`): a write's end is seen at the branch after the runtime's own
//! "concurrent map writes" check, emulated like its entry, so it should
//! cost no more than two reads. The mapread fixture times its own reads,
//! or with `-write` its own assignments.

use anyhow::bail;

use super::{
    Bench, Row,
    trial::{self, Stretches, Twin},
};

pub fn rows(bench: &Bench) -> anyhow::Result<Vec<Row>> {
    let binary = bench.fixture("mapread")?;
    let mut added = Vec::new();
    for (op, extra) in [("read", None), ("write", Some("-write"))] {
        let mut args = vec!["-seconds", "600", "-interval", "250ms"];
        args.extend(extra);
        let trial = trial::run(
            bench,
            &binary,
            &args,
            &["--exact"],
            Stretches::for_bench(bench),
            &format!("writes-{op}"),
            Twin::Alone,
        )?;
        added.push(mean_ns(&trial.traced)? - trial.untraced_baseline(mean_ns)?.value);
    }
    let [read, write] = added[..] else {
        bail!("two trials expected");
    };
    Ok(vec![
        Row::new("added ns per map read (--exact)", read, "ns"),
        Row::new("added ns per map write (--exact)", write, "ns"),
        Row::new("added cost, write / read", write / read, "×")
            .target("≤ 2.00", write <= 2.0 * read),
    ])
}

fn mean_ns(lines: &[String]) -> anyhow::Result<f64> {
    let ns = trial::ns_per_op(lines)?;
    Ok(ns.iter().sum::<f64>() / ns.len() as f64)
}
