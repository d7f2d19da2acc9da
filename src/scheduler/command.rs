//! Running a scheduler's own commands (sbatch, qsub, qstat, ...): with the
//! cluster's environment, out of jrps's process group, and never for longer
//! than the cluster's `scheduler_timeout`, because a controller that hangs
//! must leave `jrps ls` saying "unknown" rather than hang with it.

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use rustix::process::{Pid, Signal, kill_process_group};
use wait_timeout::ChildExt;

use super::error::SchedulerError;

/// How long one scheduler command may take when the site sets no
/// `scheduler_timeout`: longer than a busy controller's own RPC timeout
/// (Slurm's MessageTimeout defaults to 10 s).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// How many timeouts a submission gets.
const SUBMIT_PATIENCE: u32 = 4;

/// Where and how a cluster's commands run.
#[derive(Debug, Clone)]
pub struct CommandEnv {
    /// Set for every command: what finds the cluster (`SLURM_CONF`,
    /// `PBS_SERVER`, `SGE_ROOT`/`SGE_CELL`).
    pub vars: Vec<(String, String)>,
    pub timeout: Duration,
}

impl Default for CommandEnv {
    fn default() -> Self {
        CommandEnv {
            vars: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

/// What a finished command said.
pub struct Output {
    pub success: bool,
    /// The exit code; `None` when a signal ended it.
    pub code: Option<i32>,
    pub status: String,
    pub stdout: String,
    pub stderr: String,
}

impl CommandEnv {
    /// `program` with the cluster's environment, ready for arguments.
    pub fn command(&self, program: &str) -> Command {
        let mut command = Command::new(program);
        command.envs(self.vars.iter().map(|(name, value)| (name, value)));
        command
    }

    /// Runs `command` to its end, or kills it (and anything it started) at
    /// the timeout.
    pub fn run(
        &self,
        command: Command,
        program: &str,
        stdin: Option<&[u8]>,
    ) -> Result<Output, SchedulerError> {
        self.run_within(command, program, stdin, self.timeout)
    }

    /// A submission (sbatch, qsub): killed late, since one killed after it
    /// submitted leaves a job nobody knows the id of.
    pub fn submit(
        &self,
        command: Command,
        program: &str,
        stdin: Option<&[u8]>,
    ) -> Result<Output, SchedulerError> {
        self.run_within(command, program, stdin, self.timeout * SUBMIT_PATIENCE)
    }

    fn run_within(
        &self,
        mut command: Command,
        program: &str,
        stdin: Option<&[u8]>,
        timeout: Duration,
    ) -> Result<Output, SchedulerError> {
        let spawn_error = |source| SchedulerError::Spawn {
            program: program.into(),
            source,
        };
        command
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Out of jrps's process group, so a Ctrl-C in the terminal reaches
            // jrps alone: jrps decides what an interrupt undoes. In the group,
            // sbatch died with it, maybe after submitting but before printing
            // the job id, and the job was left queued with nobody knowing its
            // id. No terminal I/O is lost: stdin, stdout and stderr are pipes.
            .process_group(0);
        let mut child = command.spawn().map_err(spawn_error)?;
        // Read while it runs: a long answer (qstat -f of many jobs) fills
        // the pipe, and the command would wait for us as we wait for it.
        let stdout = drain(child.stdout.take());
        let stderr = drain(child.stderr.take());
        // Written aside too, so that a command that never reads its input
        // is still bound by the timeout. A broken pipe means the command
        // quit before reading: its stderr says why.
        if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
            let input = input.to_vec();
            std::thread::spawn(move || pipe.write_all(&input));
        }
        let status = match child.wait_timeout(timeout).map_err(spawn_error)? {
            Some(status) => status,
            None => {
                stop(&mut child);
                return Err(SchedulerError::TimedOut {
                    program: program.into(),
                    after: timeout,
                });
            }
        };
        Ok(Output {
            success: status.success(),
            code: status.code(),
            status: status.to_string(),
            stdout: stdout.join().unwrap_or_default(),
            stderr: stderr.join().unwrap_or_default(),
        })
    }
}

fn drain(pipe: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut bytes);
        }
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// The command and its children (its process group) are killed and reaped.
fn stop(child: &mut Child) {
    let group = Pid::from_child(child);
    let _ = kill_process_group(group, Signal::KILL);
    let _ = child.wait();
}

/// The scheduler's refusal in its own words.
pub fn refused(program: &str, out: &Output) -> SchedulerError {
    let message = [out.stderr.trim(), out.stdout.trim()]
        .into_iter()
        .find(|text| !text.is_empty())
        .unwrap_or("(no message)");
    SchedulerError::Refused {
        program: program.into(),
        status: out.status.clone(),
        message: message.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_that_hangs_is_killed_at_the_timeout_with_its_children() {
        let env = CommandEnv {
            vars: vec![("JRPS_TEST_VAR".into(), "seen".into())],
            timeout: Duration::from_millis(300),
        };
        let mut command = env.command("bash");
        command.args(["-c", "sleep 60 & echo started; wait"]);
        let started = std::time::Instant::now();
        let error = env.run(command, "bash", None).err().expect("timed out");
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(
            error.to_string(),
            "`bash` did not answer within 0.3 s; the scheduler may be overloaded or down"
        );

        let mut command = env.command("bash");
        command.args([
            "-c",
            "head -c 300000 /dev/zero | tr '\\0' x; echo $JRPS_TEST_VAR >&2",
        ]);
        let out = env.run(command, "bash", None).unwrap();
        assert!(out.success);
        assert_eq!((out.stdout.len(), out.stderr.trim()), (300_000, "seen"));
    }
}
