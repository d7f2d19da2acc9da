//! Two clusters behind one site file and one proxy: the test Slurm
//! (`main`) and the test Grid Engine (`grid`), each with its scheduler, its
//! environment and its partitions. A launch on each serves a kernel, one
//! `jrps ls` lists both with their clusters (one scheduler call each), and
//! a job of one cluster cannot register a backend in another's range.

use serde_json::Value;

use super::site::Site;
use crate::proxy::harness::{Options, Proxy};
use crate::proxy::jupyter::{jupyter_executable, run_code};
use crate::scheduler::slurm::cluster;

fn row<'a>(rows: &'a [Value], alias: &str) -> &'a Value {
    rows.iter()
        .find(|r| r["alias"] == alias)
        .unwrap_or_else(|| panic!("{alias} not in {rows:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_site_two_clusters_each_launch_serves_and_ranges_hold() {
    if cluster().is_none() {
        return;
    }
    let Some(jupyter) = jupyter_executable() else {
        return;
    };
    let Some(sge_bin) = std::env::var_os("JRPS_SGE_BIN") else {
        crate::support::missing("Grid Engine (JRPS_SGE_BIN; ./scripts/test starts it)");
        return;
    };
    let slurm_conf = std::env::var("SLURM_CONF").unwrap();
    // Slurm's jobs bind loopback here; Grid Engine's host is 198.18.5.1.
    // `grid-lo` is the same Grid Engine with its jobs told to bind loopback:
    // a backend in `main`'s range, which a `grid-lo` session may not use.
    let proxy = Proxy::start(Options {
        allowed_backend_cidrs: r#"["127.0.0.0/8"]"#.into(),
        extra: "[clusters.main]\nallowed_backend_cidrs = [\"127.0.0.0/8\"]\n\
                [clusters.grid]\nallowed_backend_cidrs = [\"198.18.5.0/24\"]\n\
                [clusters.grid-lo]\nallowed_backend_cidrs = [\"198.18.5.0/24\"]\n"
            .into(),
        ..Options::default()
    });
    let site_toml = format!(
        "[clusters.main]\nscheduler = \"slurm\"\nenv = {{ SLURM_CONF = {slurm_conf:?} }}\n\
         node_interface = \"lo\"\n\
         [clusters.main.partitions.debug]\ndefault = true\n\
         [clusters.grid]\nscheduler = \"sge\"\n\
         [clusters.grid.partitions.\"all.q\"]\ndefault = true\n\
         [clusters.grid-lo]\nscheduler = \"sge\"\nnode_interface = \"lo\"\n\
         [clusters.grid-lo.partitions.\"all.q\"]\ndefault = true\n"
    );
    let mut site = Site::around(proxy, "", &jupyter, &site_toml);
    site.path_first(std::path::Path::new(&sge_bin));

    // One launch on each cluster, at once.
    let ((main, _), (grid, _)) = tokio::join!(
        site.up_ok(&["--cluster", "main", "-t", "10"]),
        site.up_ok(&["--cluster", "grid", "-t", "10"]),
    );
    for launched in [&main, &grid] {
        let answer = run_code(&site.proxy, &launched.alias, &launched.token, "6*7")
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", site.logs()));
        assert_eq!(answer, "42");
    }
    let (status, backend) = site.proxy_session(&grid.alias).await;
    assert_eq!(status, 200, "{backend}");

    let rows = site.ls_json().await;
    for (launched, cluster, node) in [(&main, "main", "localhost"), (&grid, "grid", "sgehost")] {
        let listed = row(&rows, &launched.alias);
        assert_eq!(listed["cluster"], cluster, "{listed}");
        assert_eq!(listed["state"], "running", "{listed}");
        assert_eq!(listed["node"], node, "{listed}");
    }
    let table = site.run(&["ls"]).await;
    assert!(
        table
            .stdout
            .starts_with("ALIAS                        CLUSTER    JOB"),
        "{}",
        table.describe()
    );

    // A job of `grid-lo` registering from `main`'s range: refused, and the
    // launch says why.
    let wrong = site.up(&["--cluster", "grid-lo", "-t", "5"]).await;
    assert_eq!(wrong.code, Some(1), "{}", wrong.describe());
    assert!(
        wrong
            .stderr
            .contains("127.0.0.1 is not in cluster grid-lo's allowed_backend_cidrs"),
        "{}",
        wrong.describe()
    );

    for launched in [&main, &grid] {
        let down = site.run(&["down", &launched.alias]).await;
        assert_eq!(down.code, Some(0), "{}", down.describe());
    }
    site.assert_no_live_session(&grid.alias).await;
}
