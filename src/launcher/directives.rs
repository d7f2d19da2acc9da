//! A launch's resource requests in its scheduler's own directives: Slurm's
//! `#SBATCH` options, PBS Pro's `select`, Torque's `nodes` and Grid
//! Engine's `#$` lines. Each list is
//! in a fixed order, so the rendered script is byte-stable; every value was
//! validated to hold no spaces or shell metacharacters, as schedulers read
//! these lines without a shell.

use crate::launcher::launch_spec::LaunchSpec;
use crate::scheduler::SchedulerKind;

/// The `#SBATCH` options (without the prefix).
pub fn sbatch(spec: &LaunchSpec) -> Vec<String> {
    let mut out = vec![
        format!("--job-name={}", spec.job_name()),
        format!("--partition={}", spec.partition.name),
        format!("--time={}", spec.job_time()),
    ];
    out.extend(spec.gpu_option());
    if let Some(account) = &spec.account {
        out.push(format!("--account={account}"));
    }
    if let Some(cpus) = spec.cpus {
        out.push(format!("--cpus-per-task={cpus}"));
    }
    if let Some(memory) = &spec.memory {
        out.push(format!("--mem={memory}"));
    }
    if !spec.site.requeue {
        out.push("--no-requeue".to_owned());
    }
    out.extend(spec.sbatch_options.iter().cloned());
    out
}

/// Whole directive lines for the site's scheduler: `#SBATCH …` or `#PBS …`.
pub fn lines(spec: &LaunchSpec) -> Vec<String> {
    match spec.site.scheduler {
        SchedulerKind::Slurm | SchedulerKind::Local => sbatch(spec)
            .into_iter()
            .map(|option| format!("#SBATCH {option}"))
            .collect(),
        SchedulerKind::Pbs | SchedulerKind::Torque => pbs(spec)
            .into_iter()
            .map(|option| format!("#PBS {option}"))
            .collect(),
        SchedulerKind::Sge => sge(spec)
            .into_iter()
            .map(|option| format!("#$ {option}"))
            .collect(),
    }
}

/// The signals a job's trap takes as "stop now": SIGTERM everywhere; on
/// Grid Engine also SIGUSR2 (what `qdel` sends a `-notify` job before it
/// kills it).
pub fn stop_signals(spec: &LaunchSpec) -> &'static str {
    match spec.site.scheduler {
        SchedulerKind::Sge => "TERM USR2",
        _ => "TERM",
    }
}

/// A soft wall time's signal, which the trap takes as the end only when
/// the time is nearly up: Grid Engine's SIGUSR1 also comes before a job of
/// `-notify` is suspended.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct SoftLimit {
    pub signal: &'static str,
    /// How far before the wall time, by the script's own clock, the signal
    /// still counts as the end. The script's clock starts when bash does,
    /// which on a loaded node is many seconds after the scheduler's: a
    /// margin of the whole grace keeps a late start from ignoring the one
    /// real end (Grid Engine resends it only a minute and a half later).
    pub early_s: u64,
}

pub fn soft_limit(spec: &LaunchSpec) -> Option<SoftLimit> {
    (spec.site.scheduler == SchedulerKind::Sge).then_some(SoftLimit {
        signal: "USR1",
        early_s: SGE_GRACE_S,
    })
}

/// How much longer than its wall time a Grid Engine job may run: the soft
/// limit (`s_rt`) signals at the wall time, the hard one (`h_rt`) kills
/// with SIGKILL this much later, time enough for the trap.
const SGE_GRACE_S: u64 = 60;

/// The `#$` options: the partition is the queue; CPUs are slots of the
/// site's parallel environment, memory is per slot (`h_vmem`).
fn sge(spec: &LaunchSpec) -> Vec<String> {
    let seconds = spec.job_time().seconds();
    let mut out = vec![
        format!("-q {}", spec.partition.name),
        format!("-l h_rt={},s_rt={seconds}", seconds + SGE_GRACE_S),
    ];
    let slots = spec.cpus.unwrap_or(1);
    if slots > 1 {
        out.push(format!("-pe {} {slots}", spec.site.parallel_environment));
    }
    if let Some(memory) = &spec.memory {
        out.push(format!("-l h_vmem={}", per_slot(memory, slots)));
    }
    if spec.gpus > 0 {
        out.push(format!("-l gpu={}", spec.gpus));
    }
    if let Some(account) = &spec.account {
        out.push(format!("-A {account}"));
    }
    out.push(if spec.site.requeue { "-r y" } else { "-r n" }.to_owned());
    out.extend(spec.qsub_options.iter().cloned());
    out
}

/// A Slurm memory size for the whole job as Grid Engine's per-slot size,
/// in megabytes, rounded up.
fn per_slot(slurm: &str, slots: u32) -> String {
    let (digits, unit) = slurm.split_at(slurm.trim_end_matches(['K', 'M', 'G', 'T']).len());
    let amount: u64 = digits.parse().unwrap_or(0);
    let megabytes = match unit {
        "K" => amount.div_ceil(1024),
        "G" => amount.saturating_mul(1024),
        "T" => amount.saturating_mul(1024 * 1024),
        _ => amount,
    };
    format!("{}M", megabytes.div_ceil(u64::from(slots.max(1))))
}

/// The `#PBS` options: the partition is the queue; one chunk (PBS Pro's
/// `select`) or node (Torque's `nodes`) with the CPUs, memory and GPUs.
fn pbs(spec: &LaunchSpec) -> Vec<String> {
    let cpus = spec.cpus.unwrap_or(1);
    let memory = spec.memory.as_deref().map(pbs_size);
    let mut out = vec![
        format!("-q {}", spec.partition.name),
        format!("-l walltime={}", hours(spec.job_time().seconds())),
    ];
    if spec.site.scheduler == SchedulerKind::Torque {
        let mut nodes = format!("-l nodes=1:ppn={cpus}");
        if spec.gpus > 0 {
            nodes.push_str(&format!(":gpus={}", spec.gpus));
        }
        out.push(nodes);
        out.extend(memory.map(|memory| format!("-l mem={memory}")));
    } else {
        let mut select = format!("-l select=1:ncpus={cpus}");
        if let Some(memory) = memory {
            select.push_str(&format!(":mem={memory}"));
        }
        if spec.gpus > 0 {
            select.push_str(&format!(":ngpus={}", spec.gpus));
        }
        out.push(select);
    }
    if let Some(account) = &spec.account {
        out.push(format!("-A {account}"));
    }
    // PBS reruns a job whose node failed unless told not to.
    out.push(if spec.site.requeue { "-r y" } else { "-r n" }.to_owned());
    out.extend(spec.qsub_options.iter().cloned());
    out
}

/// PBS durations: `HH:MM:SS`, hours unbounded.
fn hours(seconds: u64) -> String {
    format!(
        "{}:{:02}:{:02}",
        seconds / 3600,
        seconds % 3600 / 60,
        seconds % 60
    )
}

/// A Slurm memory size (`16G`, `512M`, a bare number of megabytes) in
/// PBS's units (`16gb`, `512mb`).
fn pbs_size(slurm: &str) -> String {
    let (digits, unit) = slurm.split_at(slurm.trim_end_matches(['K', 'M', 'G', 'T']).len());
    let unit = match unit {
        "K" => "kb",
        "G" => "gb",
        "T" => "tb",
        _ => "mb",
    };
    format!("{digits}{unit}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pbs_units() {
        assert_eq!(hours(90), "0:01:30");
        assert_eq!(hours(50 * 3600 + 61), "50:01:01");
        assert_eq!(pbs_size("16G"), "16gb");
        assert_eq!(pbs_size("512M"), "512mb");
        assert_eq!(pbs_size("100"), "100mb");
        assert_eq!(pbs_size("2T"), "2tb");
        assert_eq!(per_slot("16G", 4), "4096M");
        assert_eq!(per_slot("1000", 3), "334M");
    }
}
