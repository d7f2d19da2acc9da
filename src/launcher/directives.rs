//! A launch's resource requests in its scheduler's own directives: Slurm's
//! `#SBATCH` options, PBS Pro's `select` and Torque's `nodes`. Each list is
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
    }
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
    }
}
