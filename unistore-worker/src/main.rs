//! `unistore-worker`: the headless, pgbench-style `bench` command and the run worker. The command
//! line lives in the library, which the controller also carries (`unistore-server worker …`).

fn main() -> std::process::ExitCode {
    unistore_worker::main(&[])
}
