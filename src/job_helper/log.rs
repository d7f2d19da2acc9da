//! What `jrps register` writes to the job log: one line per event, each
//! saying who wrote it, since the batch script and Jupyter write there too.

pub fn log(message: &str) {
    eprintln!("jrps register: {message}");
}
